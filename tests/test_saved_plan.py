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
    "update_user": (
        lambda d: d["users"]["bob"].update(name="Robert"),
        lambda s: s.update_user("bob", {"name": "Bobby"}),
    ),
    "create_user": (
        lambda d: d["users"].update(dave={"name": "Dave"}),
        lambda s: s.insert_users([User("dave", name="Someone else")], owner="other"),
    ),
    "deactivate_user": (lambda d: d["users"].pop("bob"), lambda s: s.update_user("bob", {"owner": "other"})),
    "unban_user": (
        lambda d: d["bans"].pop("carol"),
        lambda s: s.ban(["carol"], datetime(2030, 1, 1, tzinfo=UTC)),
    ),
    "ban_user": (
        lambda d: d["bans"].update(bob={"until": "forever"}),
        lambda s: s.ban(["bob"], datetime(2030, 1, 1, tzinfo=UTC)),
    ),
}


@pytest.mark.parametrize("kind", ["update_user", "create_user", "deactivate_user", "unban_user", "ban_user"])
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


def test_relations_changed_elsewhere_or_already_settled_do_not_stop_the_plan(app: Path) -> None:
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
    rewrite(
        app,
        lambda d: (
            d["users"]["bob"].update(name="Robert"),
            d["users"].update(dave={"name": "Dave"}),
            d["bans"].pop("carol"),
        ),
    )
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


# ------------------------------------------------------------------ edited plans
# A saved plan is input like any other and may have been edited after review. Each
# edit below was obeyed once; now each is refused with exit 1 and nothing is applied.


def edited(plan: Path, change: Callable[[dict], None]) -> Path:  # type: ignore[type-arg]
    data = json.loads(plan.read_text())
    change(data)
    plan.write_text(json.dumps(data))
    return plan


def forged(plan: Path, app: Path, change: Callable[[dict], None]) -> Path:  # type: ignore[type-arg]
    """An edit by someone who also recomputes every fingerprint from the live store,
    as the strongest editor could: only the re-derivation can catch it."""
    from chatroster.changes import Change
    from chatroster.fingerprint import fingerprint
    from chatroster.model import State

    db = store(app)
    blocks = db.relations("blocks")
    users = {
        uid: user.evolve(blocklist=frozenset(blocks.get(uid, ()))) for uid, user in db.all_users().items()
    }
    live = State(users=users, bans=db.bans())

    def edit(data: dict) -> None:  # type: ignore[type-arg]
        change(data)
        data["fingerprints"] = {
            c.key: fingerprint(c, live, "ops") for c in (Change.from_json(item) for item in data["changes"])
        }

    return edited(plan, edit)


def snapshot(app: Path):  # type: ignore[no-untyped-def]
    db = store(app)
    return db.all_users(), db.bans(), db.relations("blocks"), db.relations("whitelist")


def first(data: dict, action: str) -> dict:  # type: ignore[type-arg]
    return next(c for c in data["changes"] if c["action"] == action)


def set_after_name(data: dict) -> None:  # type: ignore[type-arg]
    first(data, "update_user")["after"]["name"] = "HACKED"


def update_to_delete(data: dict) -> None:  # type: ignore[type-arg]
    first(data, "update_user")["action"] = "delete_user"
    data["summary"].pop("update_user")
    data["summary"]["delete_user"] = 1


def retarget_block(data: dict) -> None:  # type: ignore[type-arg]
    first(data, "add_block")["target"] = "carol"


def set_before(data: dict) -> None:  # type: ignore[type-arg]
    first(data, "update_user")["before"]["name"] = "Someone"


TAMPERED = {
    "after-value": (set_after_name, "update_user:bob", "after.name"),
    "action": (update_to_delete, "delete_user:bob", "does not ask for this change"),
    "target": (retarget_block, "add_block:bob:carol", "does not ask for this change"),
    "before-value": (set_before, "update_user:bob", "before.name"),
}


@pytest.mark.parametrize("kind", sorted(TAMPERED))
def test_an_edited_change_is_refused_naming_the_uid_and_field(app: Path, kind: str) -> None:
    tamper, key, field = TAMPERED[kind]
    rewrite(app, lambda d: d["users"]["bob"].update(name="Robert", blocklist=["alice"]))
    plan = forged(save_plan(app), app, tamper)
    before = snapshot(app)
    result = apply_plan(app, plan)
    assert result.returncode == 1, result.stdout + result.stderr
    assert key in result.stderr and field in result.stderr, result.stderr
    assert "Nothing was applied" in result.stderr
    assert snapshot(app) == before


def test_an_added_change_is_refused_even_with_a_matching_fingerprint(app: Path) -> None:
    from chatroster.changes import Action, Change
    from chatroster.fingerprint import fingerprint
    from chatroster.model import State

    rewrite(app, lambda d: d["users"]["bob"].update(name="Robert"))
    plan = save_plan(app)
    injected = Change(Action.DEACTIVATE_USER, "alice", before={"active": True}, after={"active": False})
    live = State(users=store(app).all_users(), bans=store(app).bans())

    def inject(data: dict) -> None:  # type: ignore[type-arg]
        data["changes"].append(injected.to_json())
        data["summary"]["deactivate_user"] = 1
        data["fingerprints"][injected.key] = fingerprint(injected, live, "ops")

    edited(plan, inject)
    result = apply_plan(app, plan)
    assert result.returncode == 1
    assert "deactivate_user:alice: the manifest does not ask for this change" in result.stderr
    assert store(app).get_user("alice").active  # type: ignore[union-attr]
    assert store(app).get_user("bob").name == "Bob"  # type: ignore[union-attr]

    del_fingerprint = edited(plan, lambda d: d["fingerprints"].pop(injected.key))
    result = apply_plan(app, del_fingerprint)
    assert result.returncode == 1 and "no fingerprint for this change" in result.stderr
    assert store(app).get_user("alice").active  # type: ignore[union-attr]


def test_a_plan_made_from_another_manifest_cannot_be_passed_off_as_this_one(
    app: Path, tmp_path: Path
) -> None:
    # The defect as reported: a pruning plan from m2 (alice left out), applied with a
    # manifest that declares alice, after the digest was nulled or forged.
    pruning = tmp_path / "m2.yaml"
    data = yaml.safe_load(app.read_text())
    data["users"].pop("alice")
    pruning.write_text(yaml.safe_dump(data))
    plan = tmp_path / "p.json"
    assert chatroster("plan", str(pruning), "--out", str(plan), cwd=tmp_path).returncode == 0
    assert "deactivate_user" in plan.read_text()
    honest = tmp_path / "honest.json"
    chatroster("plan", str(app), "--out", str(honest), cwd=tmp_path)
    real_digest = json.loads(honest.read_text())["manifest_digest"]
    for digest in (None, "", real_digest):
        edited(plan, lambda d, digest=digest: d.update(manifest_digest=digest))
        result = apply_plan(app, plan)
        assert result.returncode == 1, result.stderr
        assert store(app).get_user("alice").active, digest  # type: ignore[union-attr]
    assert "deactivate_user:alice: the manifest does not ask for this change" in result.stderr


@pytest.mark.parametrize(
    "field,value,message",
    [
        ("created_at", None, "created_at"),
        ("created_at", "yesterday", "created_at"),
        ("manifest_digest", None, "manifest_digest"),
        ("manifest_files", [], "manifest_files"),
        ("owner", None, "owner"),
        ("changes", "all", "changes"),
    ],
)
def test_a_plan_file_with_missing_or_wrong_values_is_refused_by_the_schema(
    app: Path, field: str, value: object, message: str
) -> None:
    rewrite(app, lambda d: d["users"]["bob"].update(name="Robert"))
    plan = edited(save_plan(app), lambda d: d.update({field: value}))
    result = apply_plan(app, plan)
    assert result.returncode == 1
    assert "not a valid saved plan" in result.stderr and message in result.stderr
    assert "Traceback" not in result.stderr
    assert store(app).get_user("bob").name == "Bob"  # type: ignore[union-attr]


def test_a_plan_dated_in_the_future_does_not_get_past_max_age(app: Path) -> None:
    rewrite(app, lambda d: d["users"]["bob"].update(name="Robert"))
    plan = edited(save_plan(app), lambda d: d.update(created_at="2099-01-01T00:00:00Z"))
    result = apply_plan(app, plan, "--max-age", "1h")
    assert result.returncode == 1 and "creation time" in result.stderr


def test_safety_limits_count_from_live_state_not_from_the_file(app: Path) -> None:
    # managed is the base of percentage limits: inflating it must not let a prune through.
    rewrite(
        app,
        lambda d: (d["policy"].update(max_deactivate="34%"), d["users"].pop("bob"), d["users"].pop("carol")),
    )
    plan = app.parent / "plan.json"
    chatroster("plan", str(app), "--force", "--out", str(plan), cwd=app.parent)
    plan = edited(plan, lambda d: d.update(managed=1000))
    result = apply_plan(app, plan)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "max_deactivate" in result.stderr
    assert store(app).get_user("bob").active  # type: ignore[union-attr]


def test_an_edited_summary_is_refused(app: Path) -> None:
    rewrite(app, lambda d: d["users"]["bob"].update(name="Robert"))
    plan = edited(save_plan(app), lambda d: d.update(summary={"update_user": 5}))
    result = apply_plan(app, plan)
    assert result.returncode == 1 and "summary does not match" in result.stderr


def test_printed_json_is_not_taken_for_a_saved_plan(app: Path) -> None:
    rewrite(app, lambda d: d["users"]["bob"].update(name="Robert"))
    printed = chatroster("plan", str(app), "--format", "json", cwd=app.parent)
    plan = app.parent / "printed.json"
    plan.write_text(printed.stdout)
    result = apply_plan(app, plan)
    assert result.returncode == 1 and "not a saved plan" in result.stderr


def test_broken_json_says_where(app: Path) -> None:
    broken = app.parent / "broken.json"
    broken.write_text('{"format_version": 1,\n "changes": [}')
    result = apply_plan(app, broken)
    assert result.returncode == 1
    assert "invalid JSON at line 2, column" in result.stderr and "Traceback" not in result.stderr


def test_a_saved_plan_still_applies_after_the_checkout_moves(app: Path, tmp_path: Path) -> None:
    rewrite(app, lambda d: d["users"]["bob"].update(name="Robert"))
    save_plan(app)
    moved = tmp_path.parent / (tmp_path.name + "-moved")
    tmp_path.rename(moved)
    result = chatroster("apply", "--plan", str(moved / "plan.json"), "--yes", cwd=moved)
    assert result.returncode == 0, result.stderr
    assert Store(moved / "app.db").get_user("bob").name == "Robert"  # type: ignore[union-attr]


def test_a_takeover_in_a_saved_plan_needs_allow_takeover_at_apply(app: Path) -> None:
    store(app).update_user("bob", {"owner": "other-team"})
    rewrite(app, lambda d: d["users"]["bob"].update(name="Robert"))
    plan = app.parent / "plan.json"
    made = chatroster("plan", str(app), "--allow-takeover", "--out", str(plan), cwd=app.parent)
    assert made.returncode == 0, made.stderr
    refused = apply_plan(app, plan)
    assert refused.returncode == 1 and "--allow-takeover" in refused.stderr
    assert apply_plan(app, plan, "--allow-takeover").returncode == 0
    assert store(app).get_user("bob").owner == "ops"  # type: ignore[union-attr]
