"""Friends as a user meets them on the command line: the real `chatroster` CLI as a
subprocess, on a real SQLite file or against `chatroster emulator` on loopback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from emulator_process import EmulatorProcess
from local_app import chatroster, rewrite, store

from chatroster.store import Store
from chatroster.store import friends as stored

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "nexconn.yaml"


def run(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chatroster", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "NO_COLOR": "1", **env},
    )


# ------------------------------------------------------------------ the example


def test_the_nexconn_example_with_friends_applies_to_a_fresh_emulator_then_plans_no_changes(
    tmp_path: Path, emulator: EmulatorProcess
) -> None:
    declared = yaml.safe_load(EXAMPLE.read_text())["users"]
    assert "friends" in declared["alice"] and "friends" in declared["bob"]

    applied = run("apply", str(EXAMPLE), "--yes", cwd=tmp_path, NEXCONN_URL=emulator.base_url)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "add_friend" in applied.stdout and "set_friend_permission" in applied.stdout

    again = run("plan", str(EXAMPLE), "--detailed-exitcode", cwd=tmp_path, NEXCONN_URL=emulator.base_url)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "No changes" in again.stdout
    db = Store(emulator.db_path)
    try:
        assert stored.friends(db, ["alice", "bob"]) == {
            "alice": {
                "bob": {"alias": "Bobby", "ext": {"ext_team": "support"}},
                "admin": {"alias": "", "ext": {}},
            },
            "bob": {"alice": {"alias": "Ally", "ext": {}}},
        }
    finally:
        db.close()


# -------------------------------------------------------------------- validate


def write(path: Path, document: dict[str, object]) -> Path:
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


NEXCONN = {"type": "nexconn", "url": "http://127.0.0.1:9", "app_key": "${K:-k}", "app_secret": "${S:-s}"}


def test_validate_locates_every_friend_problem_at_once_and_says_what_to_do(tmp_path: Path) -> None:
    manifest = tmp_path / "team.yaml"
    manifest.write_text(
        "version: 1\n"
        f"provider: {json.dumps(NEXCONN)}\n"
        "users:\n"
        "  alice:\n"
        "    name: Alice\n"
        "    friends:\n"
        f"      bob: {{alias: {'x' * 65}}}\n"
        f"      carol: {{ext: {json.dumps({f'ext_k{n}': 'v' for n in range(11)})}}}\n"
        "      alice: {}\n"
        "  bob:\n"
        "    name: Bob\n"
        "    friends: []\n"
        "  carol:\n"
        "    name: Carol\n"
        "    friends: [alice]\n"
        "    friend_permission: sometimes\n"
    )

    done = run("validate", str(manifest), cwd=tmp_path)

    assert done.returncode == 1, done.stdout + done.stderr
    out = done.stdout + done.stderr
    assert "Traceback" not in out
    assert f"{manifest}:7:" in out and "65 characters, over the nexconn limit of 64" in out
    assert f"{manifest}:8:" in out and "11 ext fields for friend 'carol', over the nexconn limit of 10" in out
    assert f"{manifest}:9:" in out and "'alice' cannot be its own friend" in out
    assert "'alice' lists 'bob' as a friend, but the friends of 'bob'" in out
    assert "add 'alice' to the friends of 'bob', or remove 'bob' from these" in out
    assert f"{manifest}:16:" in out and "'sometimes' is not one of: anyone, approval, nobody" in out


def test_validate_refuses_more_than_3000_friends_on_nexconn(tmp_path: Path) -> None:
    friends = [f"u{n}" for n in range(3001)]
    manifest = write(
        tmp_path / "team.yaml",
        {"version": 1, "provider": NEXCONN, "users": {"alice": {"name": "A", "friends": friends}}},
    )

    done = run("validate", str(manifest), cwd=tmp_path)

    assert done.returncode == 1
    assert f"{manifest}:" in done.stdout + done.stderr
    assert "3001 entries, over the nexconn limit of 3000" in done.stdout + done.stderr


def test_friends_on_cometchat_are_a_capability_error_naming_the_field_and_the_alternative(
    tmp_path: Path,
) -> None:
    provider = {"type": "cometchat", "app_id": "app", "region": "us", "api_key": "${K:-k}"}
    users = {
        "alice": {"name": "Alice", "friends": ["bob"], "friend_permission": "nobody"},
        "bob": {"name": "Bob"},
    }
    manifest = write(tmp_path / "team.yaml", {"version": 1, "provider": provider, "users": users})

    done = run("validate", str(manifest), cwd=tmp_path)

    out = done.stdout + done.stderr
    assert done.returncode == 1 and "Traceback" not in out
    assert "'friends' is not supported by the cometchat provider (users.alice.friends)" in out
    assert "'friend_permission' is not supported by the cometchat provider" in out
    assert "chatroster manages friends on local and Nexconn only" in out


# ---------------------------------------------------------- plan, drift, apply --plan


@pytest.fixture
def app(tmp_path: Path) -> Path:
    """alice and bob, friends with aliases, and carol, applied once on a local app."""
    document = {
        "version": 1,
        "provider": {"type": "local", "path": "app.db"},
        "owner": "ops",
        "users": {
            "alice": {"name": "Alice", "friends": {"bob": {"alias": "Bobby Secret"}}},
            "bob": {"name": "Bob", "friends": ["alice"]},
            "carol": {"name": "Carol"},
        },
    }
    path = write(tmp_path / "users.yaml", document)
    first = chatroster("apply", str(path), "--yes", cwd=tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    return path


def test_aliases_and_ext_are_masked_in_printed_plans_unless_show_personal(app: Path) -> None:
    rewrite(
        app,
        lambda d: d["users"]["alice"].update(
            friends={"bob": {"alias": "Robert Secret", "ext": {"ext_note": "Private Note"}}}
        ),
    )

    for fmt in ("text", "json", "markdown"):
        masked = chatroster("plan", str(app), "--format", fmt, cwd=app.parent)
        assert masked.returncode == 0, masked.stderr
        assert "update_friend" in masked.stdout
        assert "Secret" not in masked.stdout and "Private" not in masked.stdout, fmt
        assert "masked:" in masked.stdout
    shown = chatroster("plan", str(app), "--show-personal", cwd=app.parent)
    assert '"Bobby Secret" → "Robert Secret"' in shown.stdout
    assert "Private Note" in shown.stdout


def test_drift_reports_friend_changes_on_managed_lists_only(app: Path) -> None:
    with store(app) as db:
        stored.add(db, "alice", "carol")  # made in the app: alice's friends are managed
        stored.add(db, "bob", "carol")  # bob's friends are managed too
        stored.set_profile(db, "alice", "bob", "Changed", {})

    done = chatroster("drift", str(app), cwd=app.parent)

    assert done.returncode == 2, done.stdout + done.stderr
    assert "[managed] alice: remove_friend alice → carol" in done.stdout
    assert "[managed] bob: remove_friend bob → carol" in done.stdout
    assert "[managed] alice: update_friend alice → bob" in done.stdout
    assert "Changed" not in done.stdout  # masked


def test_an_edited_saved_plan_touching_friends_is_refused_and_nothing_applied(app: Path) -> None:
    rewrite(
        app,
        lambda d: d["users"]["alice"].update(
            friends={"bob": {"alias": "Bobby Secret"}, "carol": {"alias": "C"}}
        ),
    )
    plan = app.parent / "plan.json"
    assert chatroster("plan", str(app), "--out", str(plan), cwd=app.parent).returncode == 0
    data = json.loads(plan.read_text())
    [change] = [c for c in data["changes"] if c["action"] == "add_friend"]
    change["after"]["alias"] = "Mallory"
    plan.write_text(json.dumps(data))

    done = chatroster("apply", "--plan", str(plan), str(app), "--yes", cwd=app.parent)

    assert done.returncode == 1, done.stdout + done.stderr
    assert "add_friend:alice:carol" in done.stderr and "after.alias" in done.stderr
    with store(app) as db:
        assert "carol" not in stored.friends(db, ["alice"])["alice"]


def test_a_saved_friend_change_is_refused_when_the_friendship_changed_since(app: Path) -> None:
    rewrite(app, lambda d: d["users"]["alice"].update(friends={"bob": {"alias": "Other"}}))
    plan = app.parent / "plan.json"
    assert chatroster("plan", str(app), "--out", str(plan), cwd=app.parent).returncode == 0
    with store(app) as db:
        stored.remove(db, "alice", ["bob"])  # ended in the app after the review

    done = chatroster("apply", "--plan", str(plan), str(app), "--yes", cwd=app.parent)

    assert done.returncode == 1, done.stdout + done.stderr
    assert "update_friend:alice:bob" in done.stderr
    with store(app) as db:
        assert stored.friends(db, ["alice"]) == {}


def test_only_friends_narrows_a_plan_to_friend_changes(app: Path) -> None:
    rewrite(
        app,
        lambda d: (
            d["users"]["carol"].update(name="Caroline", friend_permission="nobody"),
            d["users"]["bob"].update(friends=[]),
            d["users"]["alice"].update(friends=[]),
        ),
    )

    done = chatroster("plan", str(app), "--only", "friends", "--format", "json", cwd=app.parent)

    assert done.returncode == 0, done.stderr
    assert sorted(c["action"] for c in json.loads(done.stdout)["changes"]) == [
        "remove_friend",
        "set_friend_permission",
    ]


def test_a_friendship_is_either_users_for_target_and_exclude(app: Path) -> None:
    # carol and alice declare each other: one add (alice's, first by uid) and carol's alias.
    rewrite(
        app,
        lambda d: (
            d["users"]["alice"].update(friends={"bob": {"alias": "Bobby Secret"}, "carol": {}}),
            d["users"]["carol"].update(friends={"alice": {"alias": "Al"}}),
        ),
    )

    excluded = chatroster("plan", str(app), "--exclude", "alice", "--format", "json", cwd=app.parent)
    assert json.loads(excluded.stdout)["changes"] == []

    applied = chatroster("apply", str(app), "--target", "carol", "--yes", cwd=app.parent)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "add_friend alice → carol" in applied.stdout and "update_friend carol → alice" in applied.stdout
    again = chatroster("plan", str(app), "--detailed-exitcode", cwd=app.parent)
    assert again.returncode == 0, again.stdout + again.stderr
    with store(app) as db:
        assert stored.friends(db, ["carol"]) == {"carol": {"alice": {"alias": "Al", "ext": {}}}}


def test_a_plan_with_friend_changes_is_valid_against_the_plan_schema(app: Path) -> None:
    from jsonschema import Draft202012Validator

    rewrite(
        app,
        lambda d: (
            d["users"]["alice"].update(friends={"bob": {"alias": "Rob"}, "carol": {}}),
            d["users"]["bob"].update(friends=["alice"], friend_permission="approval"),
            d["users"]["carol"].update(friends=["alice"]),
        ),
    )
    with store(app) as db:
        stored.add(db, "bob", "carol")
    saved = app.parent / "plan.json"
    done = chatroster("plan", str(app), "--format", "json", "--out", str(saved), cwd=app.parent)
    assert done.returncode == 0, done.stderr

    schema = json.loads((ROOT / "schemas" / "plan.schema.json").read_text())
    for document in (json.loads(done.stdout), json.loads(saved.read_text())):
        Draft202012Validator(schema).validate(document)
        assert {c["action"] for c in document["changes"]} == {
            "add_friend",
            "update_friend",
            "remove_friend",
            "set_friend_permission",
        }


def test_a_store_from_before_friends_plans_them_read_only_and_apply_migrates_it(tmp_path: Path) -> None:
    from test_store_migrations import version_1_store

    version_1_store(tmp_path / "app.db")  # alice (owned by ops) and bob, no friends tables
    manifest = write(
        tmp_path / "users.yaml",
        {
            "version": 1,
            "provider": {"type": "local", "path": "app.db"},
            "owner": "ops",
            "users": {"alice": {"name": "Alice", "friends": ["bob"], "friend_permission": "nobody"}},
        },
    )
    before = (tmp_path / "app.db").read_bytes()

    planned = chatroster("plan", str(manifest), "--format", "json", cwd=tmp_path)
    assert planned.returncode == 0, planned.stderr
    assert [c["action"] for c in json.loads(planned.stdout)["changes"]] == [
        "add_friend",
        "set_friend_permission",
    ]
    assert (tmp_path / "app.db").read_bytes() == before, "plan never migrates or writes"

    assert chatroster("apply", str(manifest), "--yes", cwd=tmp_path).returncode == 0
    assert chatroster("plan", str(manifest), "--detailed-exitcode", cwd=tmp_path).returncode == 0
