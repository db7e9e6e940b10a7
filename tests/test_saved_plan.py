"""apply --plan applies exactly what was reviewed (real CLI, real SQLite file)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from test_cli import chatroster

from chatroster.model import User
from chatroster.store import Store

BASE = {
    "version": 1,
    "provider": {"type": "local", "path": "app.db"},
    "owner": "ops",
    "policy": {"prune": "deactivate", "max_deactivate": "100%", "max_unban": "100%"},
    "users": {
        "alice": {"name": "Alice", "blocklist": ["bob"], "whitelist": ["bob"]},
        "bob": {"name": "Bob"},
        "carol": {"name": "Carol"},
    },
    "bans": {"carol": {"until": "forever"}},
}


@pytest.fixture
def app(tmp_path: Path) -> Path:
    """A manifest already applied once: every later plan starts from its state."""
    path = tmp_path / "users.yaml"
    path.write_text(yaml.safe_dump(BASE))
    assert chatroster("apply", str(path), "--yes", cwd=tmp_path).returncode == 0
    return path


def rewrite(path: Path, change: Callable[[dict], None]) -> None:  # type: ignore[type-arg]
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data))


def save_plan(path: Path) -> Path:
    out = path.parent / "plan.json"
    result = chatroster("plan", str(path), "--out", str(out), cwd=path.parent)
    assert result.returncode == 0, result.stderr
    return out


def store(path: Path) -> Store:
    return Store(path.parent / "app.db")


def apply_plan(path: Path, plan: Path, *extra: str):  # type: ignore[no-untyped-def]
    return chatroster("apply", "--plan", str(plan), str(path), "--yes", *extra, cwd=path.parent)


# Each case: a manifest edit (what the reviewed plan does) and an out-of-band change to
# the same object made after the plan was saved.
STALE = {
    "update_user": (lambda d: d["users"]["bob"].update(name="Robert"),
                    lambda s: s.update_user("bob", {"name": "Bobby"})),
    "create_user": (lambda d: d["users"].update(dave={"name": "Dave"}),
                    lambda s: s.insert_users([User("dave", name="Someone else")], owner="other")),
    "deactivate_user": (lambda d: d["users"].pop("bob"),
                        lambda s: s.update_user("bob", {"owner": "other"})),
    "unban_user": (lambda d: d["bans"].pop("carol"),
                   lambda s: s.ban(["carol"], datetime(2030, 1, 1, tzinfo=UTC))),
    "ban_user": (lambda d: d["bans"].update(bob={"until": "forever"}),
                 lambda s: s.ban(["bob"], datetime(2030, 1, 1, tzinfo=UTC))),
}


@pytest.mark.parametrize("kind", ["update_user", "create_user", "deactivate_user", "unban_user",
                                  "ban_user"])
def test_a_plan_is_refused_when_its_object_changed_since(app: Path, kind: str) -> None:
    edit, interfere = STALE[kind]
    rewrite(app, edit)
    plan = save_plan(app)
    assert kind in json.loads(plan.read_text())["summary"]
    db = store(app)
    interfere(db)
    before = (db.all_users(), db.bans())
    result = apply_plan(app, plan)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "changed since the plan was made" in result.stderr and kind in result.stderr
    assert (db.all_users(), db.bans()) == before  # nothing applied


def test_a_changed_relation_is_refused(app: Path) -> None:
    rewrite(app, lambda d: d["users"]["alice"].update(blocklist=[], whitelist=[]))
    plan = save_plan(app)
    db = store(app)
    db.add_relations("blocks", [("alice", "carol")])  # unrelated: still applies
    db.remove_relations("whitelist", [("alice", "bob")])  # the planned removal happened
    db.remove_relations("blocks", [("alice", "bob")])
    db.add_relations("blocks", [("alice", "bob")])  # same state again: fingerprint holds
    result = apply_plan(app, plan)
    assert result.returncode == 0, result.stderr
    assert db.relations("blocks") == {"alice": {"carol"}}


def test_a_change_already_in_its_end_state_is_skipped(app: Path) -> None:
    rewrite(app, lambda d: d["users"]["bob"].update(name="Robert"))
    plan = save_plan(app)
    store(app).update_user("bob", {"name": "Robert"})
    result = apply_plan(app, plan)
    assert result.returncode == 0, result.stderr
    assert "No changes" in result.stdout and "Applied" not in result.stdout


def test_a_plan_applied_twice_changes_nothing_the_second_time(app: Path) -> None:
    rewrite(app, lambda d: (d["users"]["bob"].update(name="Robert"), d["bans"].pop("carol")))
    plan = save_plan(app)
    assert apply_plan(app, plan).returncode == 0
    snapshot = (store(app).all_users(), store(app).bans())
    again = apply_plan(app, plan)
    assert again.returncode == 0, again.stderr
    assert (store(app).all_users(), store(app).bans()) == snapshot
    assert chatroster("plan", str(app), "--detailed-exitcode", cwd=app.parent).returncode == 0


def test_a_half_applied_plan_is_finished_by_a_second_apply(app: Path) -> None:
    rewrite(app, lambda d: (d["users"]["bob"].update(name="Robert"),
                            d["users"].update(dave={"name": "Dave"}), d["bans"].pop("carol")))
    plan = save_plan(app)
    db = store(app)
    db.update_user("bob", {"name": "Robert"})  # as if apply stopped after this change
    db.insert_users([User("dave", name="Dave")], owner="ops")
    result = apply_plan(app, plan)
    assert result.returncode == 0, result.stderr
    assert db.bans() == {}
    assert chatroster("plan", str(app), "--detailed-exitcode", cwd=app.parent).returncode == 0


def test_a_plan_for_another_platform_or_manifest_is_refused(app: Path, tmp_path: Path) -> None:
    rewrite(app, lambda d: d["users"]["bob"].update(name="Robert"))
    plan = save_plan(app)
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump({**BASE, "provider": {"type": "local", "path": "other.db"}}))
    refused = chatroster("apply", "--plan", str(plan), str(other), "--yes", cwd=tmp_path)
    assert refused.returncode == 1 and "made for" in refused.stderr
    rewrite(app, lambda d: d["users"]["carol"].update(name="Caroline"))
    changed = apply_plan(app, plan)
    assert changed.returncode == 1 and "manifest changed" in changed.stderr


def test_an_old_plan_is_refused_with_max_age(app: Path) -> None:
    rewrite(app, lambda d: d["users"]["bob"].update(name="Robert"))
    plan = save_plan(app)
    data = json.loads(plan.read_text())
    old = datetime.now(UTC) - timedelta(hours=3)
    data["created_at"] = old.strftime("%Y-%m-%dT%H:%M:%SZ")
    plan.write_text(json.dumps(data))
    refused = apply_plan(app, plan, "--max-age", "2h")
    assert refused.returncode == 1 and "--max-age" in refused.stderr
    assert apply_plan(app, plan, "--max-age", "4h").returncode == 0


def test_a_damaged_or_missing_plan_file_is_a_clear_error(app: Path) -> None:
    missing = apply_plan(app, app.parent / "nope.json")
    assert missing.returncode == 1 and "no such plan file" in missing.stderr
    broken = app.parent / "broken.json"
    broken.write_text("{not json")
    result = apply_plan(app, broken)
    assert result.returncode == 1 and "Traceback" not in result.stderr


def test_the_saved_plan_keeps_real_values_but_printed_output_is_masked(app: Path) -> None:
    rewrite(app, lambda d: d["users"]["bob"].update(profile={"email": "bob@example.com"}))
    out = app.parent / "plan.json"
    result = chatroster("plan", str(app), "--out", str(out), cwd=app.parent)
    assert "bob@example.com" not in result.stdout + result.stderr
    assert "bob@example.com" in out.read_text()


def test_apply_plan_finds_the_manifest_the_plan_was_made_from(app: Path) -> None:
    rewrite(app, lambda d: d["users"]["bob"].update(name="Robert"))
    plan = save_plan(app)
    result = chatroster("apply", "--plan", str(plan), "--yes", cwd=app.parent.parent)
    assert result.returncode == 0, result.stderr
    assert store(app).get_user("bob").name == "Robert"  # type: ignore[union-attr]
