"""`chatroster drift --format json`: every kind of difference as structured values,
valid against schemas/drift.schema.json, masked exactly as the text output.

The CLI runs as a subprocess on a real SQLite store (changed behind the manifest's back
with the store's own API, as a console would) and on Nexconn through the emulator.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from emulator_process import EmulatorProcess
from jsonschema import Draft202012Validator
from local_app import chatroster
from referencing import Registry, Resource
from test_record import CREDENTIALS, nexconn_manifest, run

from chatroster.model import User
from chatroster.store import Store

ROOT = Path(__file__).resolve().parents[1]
EMAILS = re.compile(r"[\w.+-]+@example\.(com|org)")
PHONE = "9123 4567"


def validator() -> Draft202012Validator:
    resources = []
    for name in ("drift", "plan"):
        schema = json.loads((ROOT / "schemas" / f"{name}.schema.json").read_text())
        resources.append((schema["$id"], Resource.from_contents(schema)))
    drift = json.loads((ROOT / "schemas" / "drift.schema.json").read_text())
    return Draft202012Validator(drift, registry=Registry().with_resources(resources))


def valid(text: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(text)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator().iter_errors(document)]
    assert not errors, errors
    return document


def test_the_drift_schema_is_a_valid_schema() -> None:
    Draft202012Validator.check_schema(json.loads((ROOT / "schemas" / "drift.schema.json").read_text()))


def write(path: Path, document: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def applied_then_drifted(tmp_path: Path) -> Path:
    """A local app applied from one manifest, changed by hand, and a manifest that now
    differs from it in every way drift can tell."""
    provider = {"type": "local", "path": "app.db"}
    alice = {
        "name": "Alice",
        "tags": ["a", "b"],
        "metadata": {"team": "core", "phone": f"+65 {PHONE}"},
        "profile": {"email": "alice@example.com", "level": 3},
        "blocklist": ["bob"],
        "whitelist": ["bob"],
        "friends": ["bob"],
    }
    first = {
        "version": 1,
        "provider": provider,
        "owner": "team",
        "users": {
            "alice": alice,
            "bob": {"name": "Bob"},
            "carol": {"name": "Carol"},
            "dave": {"name": "Dave"},
        },
        "roles": {"agent": {"description": "Agents"}, "spare": {}},
        "bans": {"bob": {"until": "forever"}},
    }
    manifest = write(tmp_path / "team.yaml", first)
    applied = chatroster("apply", str(manifest), "--yes", cwd=tmp_path)
    assert applied.returncode == 0, applied.stderr
    store = Store(tmp_path / "app.db")
    try:
        store.set_active(["carol"], False)  # deactivated in a console
        store.insert_users([User(uid="erin", name="Erin")])  # no owner: adopted
        store.insert_users([User(uid="frank", name="Frank")], owner="other-team")
    finally:
        store.close()
    second = {
        **first,
        "users": {
            "alice": {
                **alice,
                "name": "Alicia",
                "tags": ["a", "c"],
                "metadata": {"team": "edge", "phone": f"+65 {PHONE}"},
                "profile": {"email": "alice@example.org", "level": 3},
                "blocklist": ["bob", "carol"],
                "whitelist": ["carol"],
                "friends": ["carol"],
            },
            "bob": {"name": "Bob"},
            "carol": {"name": "Carol"},  # declared, so active: reactivated
            "erin": {"name": "Erin"},
            "frank": {"name": "Frank"},
            "gina": {"name": "Gina", "profile": {"email": "gina@example.com"}},
        },  # dave left out, not pruned: extra
        "roles": {"agent": {"description": "Support agents"}, "lead": {}},  # spare: extra
        "bans": {"carol": {"until": "forever"}},
    }
    return write(manifest, second)


def by_key(report: dict[str, Any]) -> dict[tuple[str, str, str | None, str | None], dict[str, Any]]:
    return {(d["kind"], d["uid"], d["target"], d["action"]): d for d in report["differences"]}


def fields(difference: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    return {f["field"]: (f["live"], f["expected"]) for f in difference["fields"]}


def test_every_kind_of_difference_is_structured_valid_and_masked(tmp_path: Path) -> None:
    manifest = applied_then_drifted(tmp_path)
    drifted = chatroster("drift", str(manifest), "--format", "json", cwd=tmp_path)
    assert drifted.returncode == 2, drifted.stderr
    report = valid(drifted.stdout)
    assert report["format_version"] == 2 and report["in_sync"] is False
    found = by_key(report)
    assert set(found) >= {
        ("missing", "gina", None, "create_user"),
        ("missing", "lead", None, "create_role"),
        ("managed", "alice", None, "update_user"),
        ("managed", "alice", "carol", "add_block"),
        ("managed", "alice", "bob", "remove_whitelist"),
        ("managed", "alice", "carol", "add_whitelist"),
        ("managed", "alice", "bob", "remove_friend"),
        ("managed", "alice", "carol", "add_friend"),
        ("managed", "bob", None, "unban_user"),
        ("managed", "carol", None, "ban_user"),
        ("managed", "carol", None, "reactivate_user"),
        ("managed", "agent", None, "update_role"),
        ("unowned", "erin", None, "adopt_user"),
        ("unowned", "frank", None, None),
        ("extra", "dave", None, None),
        ("extra", "spare", None, None),
    }, sorted(found, key=str)
    assert sum(report["summary"].values()) == len(report["differences"])

    alice = fields(found[("managed", "alice", None, "update_user")])
    assert alice["name"] == ("Alice", "Alicia")
    assert alice["tags"] == (["a", "b"], ["a", "c"])
    assert alice["metadata.team"] == ("core", "edge")
    live_email, expected_email = alice["profile.email"]
    assert live_email.startswith("masked:") and expected_email.startswith("masked:")
    assert live_email != expected_email  # which value changed shows, not the value
    assert "profile.level" not in alice and "metadata.phone" not in alice  # unchanged
    assert fields(found[("managed", "alice", "carol", "add_block")]) == {"blocked": (False, True)}
    assert fields(found[("managed", "carol", None, "reactivate_user")]) == {"active": (False, True)}
    assert fields(found[("managed", "carol", None, "ban_user")]) == {"until": (None, "forever")}
    assert fields(found[("unowned", "frank", None, None)]) == {"owner": ("other-team", "team")}
    assert fields(found[("extra", "dave", None, None)]) == {"owner": ("team", None), "active": (True, None)}
    assert found[("extra", "spare", None, None)]["object"] == "role"
    gina = fields(found[("missing", "gina", None, "create_user")])
    # A missing user's fields are whole (mappings compare key by key only when both exist).
    assert gina["name"] == (None, "Gina") and gina["profile"][1]["email"].startswith("masked:")

    # Masked exactly as the text output: the same masks, on the same lines.
    text = chatroster("drift", str(manifest), cwd=tmp_path).stdout
    assert f'profile.email: "{live_email}" → "{expected_email}"' in text
    for output in (drifted.stdout, text):
        assert not EMAILS.search(output) and PHONE not in output
    shown = chatroster("drift", str(manifest), "--format", "json", "--show-personal", cwd=tmp_path)
    alice = fields(by_key(valid(shown.stdout))[("managed", "alice", None, "update_user")])
    assert alice["profile.email"] == ("alice@example.com", "alice@example.org")


def test_an_app_in_sync_is_a_valid_report_without_differences(tmp_path: Path) -> None:
    manifest = write(
        tmp_path / "team.yaml",
        {"version": 1, "provider": {"type": "local", "path": "app.db"}, "users": {"al": {"name": "Al"}}},
    )
    assert chatroster("apply", str(manifest), "--yes", cwd=tmp_path).returncode == 0
    drifted = chatroster("drift", str(manifest), "--format", "json", cwd=tmp_path)
    assert drifted.returncode == 0, drifted.stderr
    report = valid(drifted.stdout)
    assert report["in_sync"] is True and report["differences"] == [] and report["summary"] == {}


def test_nexconn_drift_through_the_emulator_is_structured_valid_and_masked(
    tmp_path: Path, emulator: EmulatorProcess
) -> None:
    manifest = tmp_path / "team.yaml"
    users = {
        "alice": {
            "name": "Alice",
            "tags": ["a"],
            "profile": {"email": "alice@example.com"},
            "blocklist": ["bob"],
        },
        "bob": {"name": "Bob", "whitelist": ["alice"]},
        "carol": {"name": "Carol"},
    }
    nexconn_manifest(manifest, emulator, users)
    document = yaml.safe_load(manifest.read_text())
    document["bans"] = {"carol": {"until": "forever"}}
    write(manifest, document)
    applied = run("apply", str(manifest), "--yes", cwd=tmp_path, env=CREDENTIALS)
    assert applied.returncode == 0, applied.stderr
    document["users"]["alice"].update(tags=["b"], profile={"email": "alice@example.org"}, blocklist=[])
    document["users"]["bob"]["whitelist"] = ["carol"]
    document["users"]["dave"] = {"name": "Dave"}
    document["bans"] = {}
    write(manifest, document)
    drifted = run("drift", str(manifest), "--format", "json", cwd=tmp_path, env=CREDENTIALS)
    assert drifted.returncode == 2, drifted.stderr
    report = valid(drifted.stdout)
    assert report["provider"]["type"] == "nexconn"
    found = by_key(report)
    assert set(found) == {
        ("missing", "dave", None, "create_user"),
        ("managed", "alice", None, "update_user"),
        ("managed", "alice", "bob", "remove_block"),
        ("managed", "bob", "alice", "remove_whitelist"),
        ("managed", "bob", "carol", "add_whitelist"),
        ("managed", "carol", None, "unban_user"),
    }
    alice = fields(found[("managed", "alice", None, "update_user")])
    assert alice["tags"] == (["a"], ["b"]) and str(alice["profile.email"][0]).startswith("masked:")
    assert not EMAILS.search(drifted.stdout)


@pytest.mark.parametrize("broken", [False, True])
def test_several_environments_give_one_valid_document(tmp_path: Path, broken: bool) -> None:
    base = write(
        tmp_path / "users" / "team.yaml",
        {
            "version": 1,
            "provider": {"type": "local", "path": "base.db"},
            "users": {"al": {"name": "Al", "profile": {"email": "al@example.com"}}},
        },
    )
    for name in ("staging", "production"):
        environment: dict[str, Any] = {"extends": "../team.yaml", "provider": {"path": f"../{name}.db"}}
        write(tmp_path / "users" / "environments" / f"{name}.yaml", environment)
    if broken:
        (tmp_path / "users" / "production.db").write_text("not a database, and no user of it")
    staging = tmp_path / "users" / "environments" / "staging.yaml"
    assert chatroster("apply", str(staging), "--yes", cwd=tmp_path).returncode == 0
    drifted = chatroster("drift", str(base.parent), "--env", "all", "--format", "json", cwd=tmp_path)
    document = valid(drifted.stdout)
    entries = {entry["environment"]: entry for entry in document["environments"]}
    assert entries["staging"]["exit_code"] == 0 and entries["staging"]["drift"]["in_sync"] is True
    if broken:
        assert drifted.returncode == 1 and "error" in entries["production"]
    else:
        assert drifted.returncode == 2 and entries["production"]["exit_code"] == 2
        (missing,) = entries["production"]["drift"]["differences"]
        assert (missing["kind"], missing["uid"], missing["action"]) == ("missing", "al", "create_user")
    assert not EMAILS.search(drifted.stdout)
