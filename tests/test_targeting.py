"""Targeting (--target, --exclude, --only) never plans what apply cannot do: a change
to a user the platform does not have yet, or holds deactivated, is left out when the
user's creation or reactivation is outside the targeting, with a warning that says how
to include it. In-process on a real SQLite store, and through the CLI against the
emulator, where Nexconn refuses writes to a soft-deleted user."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import yaml
from cli_process import chatroster
from emulator_process import EmulatorProcess

from chatroster.model import Manifest, ProviderConfig, State, User
from chatroster.providers import open_provider
from chatroster.runner import Options, Targeting, make_plan
from chatroster.store import Store

OWNER = "ops"


def local(tmp_path: Path, *live: User) -> ProviderConfig:
    db = tmp_path / "app.db"
    store = Store(db)
    try:
        store.insert_users(live)
    finally:
        store.close()
    return ProviderConfig("local", {"path": str(db)})


def planned(config: ProviderConfig, targeting: Targeting, *users: User):  # type: ignore[no-untyped-def]
    manifest = Manifest(desired=State(users={u.uid: u for u in users}), provider=config, owner=OWNER)
    with open_provider(config) as provider:
        return make_plan(manifest, provider, Options(targeting=targeting))


def test_blocks_of_a_user_only_blocklists_leaves_uncreated_are_left_out_with_a_warning(
    tmp_path: Path,
) -> None:
    config = local(tmp_path, User(uid="bob", name="Bob", owner=OWNER))
    alice = User(uid="alice", name="Alice", blocklist=("bob",))
    bob = User(uid="bob", name="Bob", blocklist=("carol",))
    carol = User(uid="carol", name="Carol")

    result = planned(config, Targeting(only=("blocklists",)), alice, bob, carol)

    # bob exists: his block of carol needs carol's creation, which is left out too.
    assert [c.key for c in result.changes] == []
    assert result.warnings == (
        "1 change(s) left out (add_block): they need create_user alice, which this "
        "targeting leaves out; add --only users to include it",
        "1 change(s) left out (add_block): they need create_user carol, which this "
        "targeting leaves out; add --only users to include it",
    )
    everything = planned(config, Targeting(), alice, bob, carol)
    assert {c.key for c in everything.changes} >= {"add_block:alice:bob", "add_block:bob:carol"}


def test_a_target_whose_block_names_an_untargeted_new_user_keeps_the_rest(tmp_path: Path) -> None:
    config = local(tmp_path, User(uid="alice", name="Alice", owner=OWNER), User(uid="dave", owner=OWNER))
    alice = User(uid="alice", name="Alice A", blocklist=("bob", "dave"))

    result = planned(config, Targeting(include=("alice",)), alice, User(uid="bob"), User(uid="dave"))

    assert [c.key for c in result.changes] == ["update_user:alice", "add_block:alice:dave"]
    assert result.warnings == (
        "1 change(s) left out (add_block): they need create_user bob, which this targeting "
        "leaves out; widen --target/--exclude to include it",
    )


def test_only_blocklists_on_a_soft_deleted_nexconn_user_plans_nothing_apply_cannot_do(
    tmp_path: Path, emulator_factory: Callable[..., EmulatorProcess]
) -> None:
    emulator = emulator_factory()
    manifest = tmp_path / "team.yaml"
    provider = {
        "type": "nexconn",
        "url": emulator.base_url,
        "app_key": "${K:-emulator-app-key}",
        "app_secret": "${S:-emulator-app-secret}",
    }

    def write(users: dict[str, object]) -> None:
        document = {"version": 1, "provider": provider, "owner": OWNER, "users": users}
        document["policy"] = {"prune": "deactivate", "max_deactivate": "100%"}
        manifest.write_text(yaml.safe_dump(document))

    write({"alice": {"name": "Alice"}, "bob": {"name": "Bob"}})
    assert chatroster("apply", manifest, "--yes", cwd=tmp_path).returncode == 0
    write({"bob": {"name": "Bob"}})  # alice pruned: soft-deleted
    assert chatroster("apply", manifest, "--yes", cwd=tmp_path).returncode == 0
    store = Store(emulator.db_path)  # Nexconn restores no sooner than an hour after
    try:
        with store.transaction() as db:
            db.execute("UPDATE users SET deactivated_at = deactivated_at - 7200")
    finally:
        store.close()
    write({"alice": {"name": "Alice", "blocklist": ["bob"]}, "bob": {"name": "Bob"}})

    narrowed = chatroster("apply", manifest, "--only", "blocklists", "--yes", cwd=tmp_path)

    assert narrowed.returncode == 0, narrowed.stdout + narrowed.stderr
    assert "they need reactivate_user alice" in narrowed.stdout
    assert "add --only users" in narrowed.stdout
    assert "blocklist/add" not in json.dumps(emulator.stats()["by_endpoint"])
    whole = chatroster("apply", manifest, "--yes", cwd=tmp_path)
    assert whole.returncode == 0, whole.stdout + whole.stderr
    assert "add_block alice → bob" in whole.stdout
    final = chatroster("plan", manifest, "--detailed-exitcode", cwd=tmp_path)
    assert final.returncode == 0, final.stdout + final.stderr
