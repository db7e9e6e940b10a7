"""The JSON Schema: valid, shipped with the package, documented, and checked quickly."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from chatroster.manifest import schema
from chatroster.manifest.predicate import compile_schema

SCHEMA_PATH = Path(__file__).parent.parent / "schemas" / "manifest.schema.json"


def test_the_schema_is_a_valid_draft_2020_12_schema() -> None:
    document = json.loads(SCHEMA_PATH.read_text())
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(document)


def test_the_package_ships_the_same_schema_file() -> None:
    assert schema.load_schema() == json.loads(SCHEMA_PATH.read_text())


def properties(node: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        for name, sub in node.get("properties", {}).items():
            yield f"{path}.{name}", sub
        for key, value in node.items():
            if key not in ("if",):  # the conditions of if/then only select a branch
                yield from properties(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from properties(item, f"{path}[{index}]")


def test_every_property_has_a_description_for_editors() -> None:
    inlined = schema.inlined_schema()
    undocumented = [path for path, sub in properties(inlined) if "description" not in sub]
    assert undocumented == []


def test_the_schema_describes_the_manifest_sections() -> None:
    document = schema.load_schema()
    assert set(document["properties"]) == {
        "extends",  # an environment file's layering keys
        "environment",
        "version",
        "provider",
        "owner",
        "policy",
        "users",
        "bans",
        "roles",
    }
    assert document["required"] == ["version"]
    user = document["$defs"]["user"]
    assert set(user["properties"]) == {
        "name",
        "avatar",
        "link",
        "role",
        "status_message",
        "metadata",
        "tags",
        "profile",
        "active",
        "blocklist",
        "whitelist",
        "tokens_valid_after",
        "friends",
        "friend_permission",
    }
    assert user["required"] == ["name"]


uids = st.sampled_from(["alice", "bob", "Bob_1", "a b", "", "x" * 70, "é"])
texts = st.one_of(st.text(max_size=5), st.sampled_from(["", "2026-12-31T00:00:00Z", "forever", "25%"]))
scalars = st.one_of(st.none(), st.booleans(), st.integers(-2, 101), st.floats(-1, 101), texts)
values = st.recursive(
    st.one_of(scalars, uids),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(texts, inner, max_size=3)),
    max_leaves=6,
)
uid_lists = st.lists(uids, max_size=3)
dates = st.sampled_from(["2026-12-31T00:00:00Z", "2026-12-31", "2026-12-31 00:00", "soon", "forever"])
ext = st.dictionaries(st.sampled_from(["ext_a", "ext_b", "dept", "ext_"]), st.one_of(texts, scalars))
profile = st.fixed_dictionaries(
    {},
    optional={
        "email": texts,
        "gender": st.sampled_from([0, 1, 2, 3, True, 1.0, "1"]),
        "level": st.one_of(st.integers(-1, 101), st.floats(-1, 101), st.booleans()),
        "role": st.integers(-1, 101),
        "ext": ext,
        "other": texts,
    },
)


def near(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly values of the right shape, sometimes anything at all."""
    return st.one_of(valid, valid, valid, values)


# Users of nearly the right shape, so that both answers of the quick check are common.
users = st.fixed_dictionaries(
    {"name": near(texts)},
    optional={
        "avatar": near(texts),
        "role": near(texts),
        "metadata": near(st.dictionaries(texts, values, max_size=3)),
        "tags": near(st.lists(texts, max_size=3)),
        "profile": near(profile),
        "active": near(st.booleans()),
        "blocklist": near(uid_lists),
        "whitelist": near(st.one_of(uid_lists, st.booleans())),
        "tokens_valid_after": near(dates),
        "nmae": texts,
    },
)
bans = st.fixed_dictionaries({}, optional={"until": near(dates), "reason": texts})


def quick_and_full(section_name: str, key: str, entry: Any) -> tuple[bool, bool]:
    section = schema.inlined_schema()["properties"][section_name]
    quick = compile_schema(section["propertyNames"])(key) and compile_schema(section["additionalProperties"])(
        entry
    )
    return quick, Draft202012Validator(section).is_valid({key: entry})


# The quick check may only ever err towards "no" (jsonschema then decides); for the
# manifest schema it is never unsure, so both answers agree.
@settings(max_examples=500, deadline=None)
@given(key=uids, user=users)
def test_the_quick_check_agrees_with_jsonschema_on_users(key: str, user: Any) -> None:
    quick, full = quick_and_full("users", key, user)
    assert quick == full


@settings(max_examples=200, deadline=None)
@given(key=uids, ban=st.one_of(bans, values))
def test_the_quick_check_agrees_with_jsonschema_on_bans(key: str, ban: Any) -> None:
    quick, full = quick_and_full("bans", key, ban)
    assert quick == full


def test_the_quick_check_passes_ordinary_valid_users() -> None:
    section = schema.inlined_schema()["properties"]["users"]
    quick_user = compile_schema(section["additionalProperties"])
    assert quick_user(
        {
            "name": "Alice",
            "tags": ["a", "b"],
            "metadata": {"team": "core"},
            "profile": {
                "email": "a@example.com",
                "gender": 2,
                "level": 3,
                "ext": {"ext_dept": "x"},
            },
            "active": True,
            "blocklist": ["bob"],
            "whitelist": False,
            "tokens_valid_after": "2026-11-01T00:00:00Z",
        }
    )


def test_the_quick_check_says_no_to_keywords_it_does_not_know() -> None:
    assert compile_schema({"type": "string", "format": "email"})("a@example.com") is False
    assert compile_schema(True)("anything") is True


providers = st.fixed_dictionaries(
    {"type": near(st.sampled_from(["local", "nexconn", "cometchat", "other"]))},
    optional={
        "url": near(st.sampled_from(["https://api.example.com", "http://127.0.0.1:8765", "ftp://x"])),
        "path": near(texts),
        "rate": near(st.integers(-1, 200)),
        "app_key": near(texts),
        "environment": near(st.sampled_from(["production", "development", "staging"])),
    },
)
policies = st.fixed_dictionaries(
    {},
    optional={
        "prune": near(st.sampled_from(["none", "deactivate", "delete", "all"])),
        "mode": near(st.sampled_from(["sync", "seed", "other"])),
        "max_update": near(st.sampled_from(["10%", "5", 5, "x", "100%"])),
        "protected": near(uid_lists),
    },
)
manifests = st.fixed_dictionaries(
    {"version": near(st.sampled_from([1, 2, "1"]))},
    optional={
        "provider": near(providers),
        "owner": near(texts),
        "policy": near(policies),
        "users": near(st.dictionaries(uids, users, max_size=2)),
        "bans": near(st.dictionaries(uids, bans, max_size=2)),
        "roles": near(st.dictionaries(uids, st.fixed_dictionaries({}, optional={"description": texts}))),
        "extra": values,
    },
)


# A manifest whose users and bans pass their quick tests is passed whole by one more
# quick test, and jsonschema is not even imported: that test must agree with it too.
@settings(max_examples=500, deadline=None)
@given(data=manifests)
def test_the_quick_check_of_a_whole_manifest_agrees_with_jsonschema(data: Any) -> None:
    quick = schema.whole_test()(data)
    assert quick == Draft202012Validator(schema.inlined_schema()).is_valid(data)


def test_a_valid_manifest_is_checked_without_loading_jsonschema(tmp_path: Path) -> None:
    """The examples pass the quick tests alone (jsonschema's import is a tenth of a
    second of every command); a broken one still gets jsonschema's explanation."""
    script = (
        "import sys\n"
        "from chatroster.manifest import load\n"
        "from chatroster.errors import ManifestError\n"
        "load(sys.argv[1:2], env={})\n"
        "assert 'jsonschema' not in sys.modules, 'jsonschema was imported for a valid manifest'\n"
        "try:\n"
        "    load(sys.argv[2:3], env={})\n"
        "except ManifestError as error:\n"
        "    assert 'jsonschema' in sys.modules\n"
        "    print(error.problems[0].message)\n"
    )
    broken = tmp_path / "broken.yaml"
    broken.write_text("version: 1\nusers:\n  alice: {name: Alice, tags: staff}\n")
    example = Path(__file__).resolve().parents[1] / "examples" / "quickstart.yaml"
    done = subprocess.run(
        [sys.executable, "-c", script, str(example), str(broken)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "must be a list" in done.stdout


@pytest.mark.parametrize(
    ("schema", "value"),
    [
        ({"if": {"format": "email"}, "then": False}, "x"),
        ({"if": {"uniqueItems": True}, "then": False}, [1, 2]),
        ({"if": {"const": []}, "then": False}, []),
    ],
)
def test_an_if_whose_condition_the_quick_check_cannot_decide_never_passes_what_jsonschema_refuses(
    schema: dict[str, Any], value: Any
) -> None:
    assert not Draft202012Validator(schema).is_valid(value)
    assert compile_schema(schema)(value) is False


def test_an_if_with_an_exact_condition_still_takes_its_else_branch() -> None:
    schema = {"if": {"const": "a"}, "then": {"maxLength": 0}, "else": {"minLength": 1}}
    assert compile_schema(schema)("b") is True
    assert compile_schema(schema)("a") is False


def test_a_schema_nested_deeper_than_python_compiles_is_left_to_jsonschema() -> None:
    schema: dict[str, Any] = {"type": "string"}
    value: Any = "x"
    for _ in range(60):
        schema, value = {"type": "array", "items": schema}, [value]
    assert Draft202012Validator(schema).is_valid(value)
    assert compile_schema(schema)(value) is False  # unsure, never wrong
