"""Export: live state written as a manifest that validates, reads well, and plans to no
changes against the platform it came from."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from chatroster.apply import apply
from chatroster.changes import Action
from chatroster.export import TOP_KEYS, USER_KEYS, _in_order, dump_yaml, export_manifest
from chatroster.model import Ban, ProviderConfig, State, User
from chatroster.providers.base import Scope
from chatroster.providers.local import LocalProvider
from chatroster.runner import Options, make_plan

SCHEMA = Path(__file__).parent.parent / "schemas" / "manifest.schema.json"
NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
LOCAL = ProviderConfig("local", {"path": "local.db"})
OWNER = "team"

ALICE = User(
    "alice",
    name="Alice Ng",
    avatar="https://example.com/alice.png",
    link="https://example.com/u/alice",
    role="agent",
    status_message="On call",
    metadata={"team": "core"},
    tags=("staff", "beta"),
    profile={"email": "alice@example.com", "level": 3, "ext": {"ext_dept": "eng"}},
    active=False,
    blocklist=frozenset({"mallory"}),
    whitelist=frozenset({"bob"}),
    whitelist_mode=True,
    tokens_valid_after=datetime(2026, 11, 1, tzinfo=UTC),
    owner=OWNER,
)
# As a platform reports a user with nothing set: empty values, not missing ones.
BOB = User(
    "bob",
    name="Bob",
    avatar="",
    metadata={},
    tags=(),
    profile={},
    active=True,
    whitelist_mode=False,
    owner=None,
)


def export(live: State, provider: ProviderConfig = LOCAL) -> dict[str, Any]:
    return export_manifest(live, provider=provider, owner=OWNER)


def test_a_user_is_exported_with_only_the_fields_that_are_set() -> None:
    assert export(State({"bob": BOB}))["users"] == {"bob": {"name": "Bob"}}


def test_every_field_is_exported_in_the_manifest_form() -> None:
    assert export(State({"alice": ALICE}))["users"]["alice"] == {
        "name": "Alice Ng",
        "avatar": "https://example.com/alice.png",
        "link": "https://example.com/u/alice",
        "role": "agent",
        "status_message": "On call",
        "metadata": {"team": "core"},
        "tags": ["beta", "staff"],
        "profile": {"email": "alice@example.com", "level": 3, "ext": {"ext_dept": "eng"}},
        "active": False,
        "blocklist": ["mallory"],
        "whitelist": ["bob"],
        "tokens_valid_after": "2026-11-01T00:00:00Z",
    }


def test_lists_that_were_read_are_exported_even_when_empty() -> None:
    bob = BOB.evolve(blocklist=frozenset(), whitelist=frozenset())

    entry = export(State({"bob": bob}))["users"]["bob"]

    assert entry["blocklist"] == []  # managed: blocks no one
    assert entry["whitelist"] is False  # whitelist mode off


def test_lists_that_were_not_read_are_left_out() -> None:
    alice = ALICE.evolve(blocklist=None, whitelist=None)

    assert {"blocklist", "whitelist"}.isdisjoint(export(State({"alice": alice}))["users"]["alice"])


def test_bans_are_exported_until_a_time_or_forever() -> None:
    until = datetime(2026, 12, 31, tzinfo=UTC)
    bans = {"eve": Ban("eve"), "mallory": Ban("mallory", until)}

    assert export(State({}, bans))["bans"] == {
        "eve": {"until": "forever"},
        "mallory": {"until": "2026-12-31T00:00:00Z"},
    }


def test_bans_are_left_out_where_the_platform_has_none() -> None:
    cometchat = ProviderConfig("cometchat", {"app_id": "app", "region": "eu", "api_key": "k"})

    assert "bans" not in export(State({}, {}), cometchat)


def test_the_provider_section_names_secrets_but_never_holds_them() -> None:
    nexconn = ProviderConfig("nexconn", {"region": "sg", "app_key": "key-123", "app_secret": "secret-456"})

    data = export(State({}, {}), nexconn)

    assert data["provider"] == {
        "type": "nexconn",
        "region": "sg",
        "app_key": "${NEXCONN_APP_KEY}",
        "app_secret": "${NEXCONN_APP_SECRET}",
    }
    assert "key-123" not in dump_yaml(data) and "secret-456" not in dump_yaml(data)


def test_the_yaml_names_its_schema_and_keeps_a_readable_order() -> None:
    data = {
        "bans": {},
        "users": {"zed": {"name": "Z"}, "amy": {"tags": ["a"], "name": "A"}},
        "owner": OWNER,
        "provider": {"type": "local"},
        "version": 1,
    }

    text = dump_yaml(data)

    assert text.splitlines()[0].endswith("schema: schemas/manifest.schema.json")
    keys = [line.split(":")[0] for line in text.splitlines() if line and line[0].isalpha()]
    assert keys == ["version", "provider", "owner", "users", "bans"]
    assert text.index("amy:") < text.index("zed:")
    assert "    name: A\n    tags:\n    - a\n" in text  # name first; block style


def test_times_reload_as_the_same_strings() -> None:
    data = export(State({"alice": ALICE}, {"eve": Ban("eve", NOW)}))

    reloaded = yaml.safe_load(dump_yaml(data))

    assert reloaded == data
    assert reloaded["bans"]["eve"]["until"] == "2026-11-21T12:00:00Z"


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=10,
)


def ordered_whole(data: dict[str, Any]) -> dict[str, Any]:
    """The document as one dump would take it: known keys in order, users by uid."""
    whole = _in_order(data, TOP_KEYS)
    users = whole.get("users")
    if isinstance(users, dict):
        whole["users"] = {uid: _in_order(users[uid], USER_KEYS) for uid in sorted(users)}
    return whole


@settings(max_examples=200, deadline=None)
@given(users=st.dictionaries(st.text(max_size=6), st.dictionaries(st.text(max_size=8), JSON_VALUES)))
def test_the_yaml_is_the_text_pyyaml_safe_dumper_writes(users: dict[str, Any]) -> None:
    # dump_yaml makes the scalar nodes itself, for speed; the text must not change.
    data = {"version": 1, "owner": OWNER, "users": users}
    expected = yaml.dump(
        ordered_whole(data),
        Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper),
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=1000,
    )

    assert dump_yaml(data).split("\n", 1)[1] == expected


def test_the_exported_manifest_is_valid_against_the_schema() -> None:
    data = export(State({"alice": ALICE, "bob": BOB}, {"mallory": Ban("mallory")}))

    errors = list(
        Draft202012Validator(json.loads(SCHEMA.read_text())).iter_errors(yaml.safe_load(dump_yaml(data)))
    )

    assert errors == []


# ----------------------------------------------------------------------- round trip


@pytest.fixture
def local(tmp_path: Path) -> Iterator[LocalProvider]:
    provider = LocalProvider(tmp_path / "local.db", clock=lambda: NOW.timestamp())
    yield provider
    provider.close()


def fill(local: LocalProvider) -> None:
    """An app someone built by hand: owned and unowned users, lists, bans."""
    store = local.store
    store.insert_users([ALICE, BOB, User("mallory", name="Mallory", owner="other-team")])
    store.put_role("agent", {"description": "Support agent", "owner": OWNER})  # alice's role
    store.add_relations("blocks", [("alice", "mallory")])
    store.add_relations("whitelist", [("alice", "bob")])
    store.ban(["mallory", "bob"], datetime(2026, 12, 31, tzinfo=UTC))


def test_users_another_owner_holds_are_left_out_with_their_bans() -> None:
    mallory = User("mallory", name="Mallory", owner="other-team")
    live = State({"bob": BOB, "mallory": mallory}, {"mallory": Ban("mallory"), "eve": Ban("eve")})

    data = export(live)

    assert set(data["users"]) == {"bob"} and set(data["bans"]) == {"eve"}


def test_export_then_plan_against_the_same_store_only_adopts_unowned_users(
    local: LocalProvider, tmp_path: Path
) -> None:
    from chatroster import manifest as manifests

    fill(local)
    live = local.read(Scope(uids=frozenset(), owner=OWNER, everything=True))
    path = tmp_path / "manifest.yaml"
    path.write_text(dump_yaml(export(live, ProviderConfig("local", {"path": "local.db"}))))

    manifest = manifests.load([path], env={}, now=NOW)
    first = make_plan(manifest, local, Options(now=lambda: NOW))

    # bob has no owner yet: the first apply adopts him, and that is all it does.
    assert [(change.action, change.uid) for change in first.changes] == [(Action.ADOPT_USER, "bob")]
    apply(first.changes, local)
    assert make_plan(manifest, local, Options(now=lambda: NOW)).empty


def test_a_large_export_is_written_in_chunks_that_read_as_one_document() -> None:
    from chatroster.export import CHUNK, _dump

    users = {
        f"u{i:05d}": {
            "name": f"User {i}" if i % 7 else "two\nlines: and a colon",
            "tags": ["staff", "2026-01-01"],  # reads as a date unless quoted
            "metadata": {"note": "ünïcode", "n": i},
            "active": i % 3 != 0,
        }
        for i in range(2 * CHUNK + 345)
    }
    data = {
        "version": 1,
        "provider": {"type": "local"},
        "owner": "team",
        "users": users,
        "bans": {f"u{i:05d}": {"until": "forever"} for i in range(0, 2 * CHUNK + 345, 100)},
    }
    text = dump_yaml(data)
    whole = ordered_whole(data)
    whole["bans"] = dict(sorted(data["bans"].items()))
    header, body = text.split("\n", 1)
    assert header.startswith("# chatroster manifest")
    assert body == _dump(whole)  # the same text as one dump of the whole document
    assert yaml.safe_load(text) == data
