"""Declared users are active unless they say ``active: false``.

A user pruned with ``prune: deactivate`` and then put back in the manifest (a git
revert), or deactivated by hand in the console, is reactivated by the next apply and
reported as managed drift until then. On Nexconn, whose restore brings back the id
alone, every declared field is written again in the same plan. Each walk runs the CLI
as a subprocess, against a real SQLite store or the emulator on loopback.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import yaml
from cli_process import chatroster
from emulator_process import EmulatorProcess

from chatroster.store import Store

OWNER = "ops"

# Letters and digits only, so that the same uids suit all three platforms.
ALICE = {
    "name": "Alice Ng",
    "avatar": "https://example.com/alice.png",
    "tags": ["staff", "beta"],
    "blocklist": ["mallory"],
}
BOB = {"name": "Bob Tan", "tags": ["staff"]}
MALLORY = {"name": "Mallory"}
PROFILE = {"email": "alice@example.com", "level": 3, "ext": {"ext_dept": "eng"}}


def write(path: Path, provider: dict[str, Any], users: dict[str, Any]) -> Path:
    manifest = {
        "version": 1,
        "provider": provider,
        "owner": OWNER,
        "policy": {"prune": "deactivate", "max_deactivate": 5},
        "users": users,
    }
    path.write_text(yaml.safe_dump(manifest, sort_keys=False))
    return path


def plan_json(path: Path) -> dict[str, Any]:
    result = chatroster("plan", str(path), "--format", "json", "--show-personal", cwd=path.parent)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def apply(path: Path) -> None:
    result = chatroster("apply", str(path), "--yes", cwd=path.parent)
    assert result.returncode == 0, result.stdout + result.stderr


def in_sync(path: Path) -> None:
    result = chatroster("plan", str(path), "--detailed-exitcode", cwd=path.parent)
    assert result.returncode == 0, result.stdout + result.stderr


def actions(plan: dict[str, Any]) -> list[tuple[str, str]]:
    return [(change["action"], change["uid"]) for change in plan["changes"]]


def prune_and_revert(path: Path, provider: dict[str, Any], alice: dict[str, Any]) -> dict[str, Any]:
    """Apply alice, bob and mallory; drop bob and alice from the manifest (pruned); put
    them back. Returns the plan that puts them back."""
    everyone = {"alice": alice, "bob": BOB, "mallory": MALLORY}
    write(path, provider, everyone)
    apply(path)
    in_sync(path)
    write(path, provider, {"mallory": MALLORY})
    pruned = plan_json(path)
    assert sorted(actions(pruned)) == [("deactivate_user", "alice"), ("deactivate_user", "bob")]
    apply(path)
    in_sync(path)
    write(path, provider, everyone)  # the revert
    return plan_json(path)


# ------------------------------------------------------------------ local platform


def local_provider(tmp_path: Path) -> dict[str, Any]:
    return {"type": "local", "path": str(tmp_path / "store.db")}


def test_local_a_pruned_user_put_back_is_reactivated_and_then_in_sync(tmp_path: Path) -> None:
    path = tmp_path / "team.yaml"
    back = prune_and_revert(path, local_provider(tmp_path), {**ALICE, "profile": PROFILE})
    # The local platform keeps a deactivated user's data: only the state changes.
    assert sorted(actions(back)) == [("reactivate_user", "alice"), ("reactivate_user", "bob")]
    apply(path)
    in_sync(path)
    store = Store(tmp_path / "store.db", writable=False)
    alice = store.get_user("alice")
    store.close()
    assert alice is not None and alice.active and alice.tags == ("beta", "staff")


def test_local_a_user_deactivated_by_hand_is_managed_drift_and_reactivated(tmp_path: Path) -> None:
    path = write(tmp_path / "team.yaml", local_provider(tmp_path), {"alice": ALICE, "mallory": MALLORY})
    apply(path)
    store = Store(tmp_path / "store.db")
    store.set_active(["alice"], False)  # by hand, behind the manifest's back
    store.close()
    drift = chatroster("drift", str(path), "--format", "json", cwd=tmp_path)
    assert drift.returncode == 2, drift.stderr
    [difference] = json.loads(drift.stdout)["differences"]
    assert (difference["uid"], difference["kind"]) == ("alice", "managed")
    assert "reactivate" in difference["description"]
    apply(path)
    assert chatroster("drift", str(path), cwd=tmp_path).returncode == 0


def test_active_false_still_deactivates_and_seed_mode_never_reactivates(tmp_path: Path) -> None:
    provider = local_provider(tmp_path)
    path = write(tmp_path / "team.yaml", provider, {"alice": {**ALICE, "active": False}, "mallory": MALLORY})
    apply(path)
    in_sync(path)
    seed = yaml.safe_load(path.read_text())
    seed["policy"] = {"mode": "seed"}
    del seed["users"]["alice"]["active"]
    path.write_text(yaml.safe_dump(seed))
    assert plan_json(path)["changes"] == []  # seed mode only creates what is missing


# ------------------------------------------------------------------------- Nexconn


def nexconn_provider(emulator: EmulatorProcess) -> dict[str, Any]:
    return {
        "type": "nexconn",
        "url": emulator.base_url,
        "app_key": "${NEXCONN_APP_KEY:-emulator-app-key}",
        "app_secret": "${NEXCONN_APP_SECRET:-emulator-app-secret}",
    }


def age_deactivations(db: Path) -> None:
    """Nexconn restores a user no sooner than 1 hour after its soft-delete."""
    with sqlite3.connect(db) as connection:
        connection.execute("UPDATE users SET deactivated_at = deactivated_at - 7200")
    connection.close()


def test_nexconn_a_pruned_user_put_back_gets_every_declared_field_again(
    tmp_path: Path, emulator: EmulatorProcess
) -> None:
    path = tmp_path / "team.yaml"
    provider = nexconn_provider(emulator)
    alice = {**ALICE, "profile": PROFILE, "whitelist": ["bob"]}
    everyone = {"alice": alice, "bob": BOB, "mallory": MALLORY}
    write(path, provider, everyone)
    apply(path)
    write(path, provider, {"mallory": MALLORY})
    apply(path)
    age_deactivations(emulator.db_path)
    write(path, provider, everyone)
    back = plan_json(path)
    changes = {(c["action"], c["uid"], c.get("target")): c for c in back["changes"]}
    assert set(changes) == {
        ("reactivate_user", "alice", None),
        ("reactivate_user", "bob", None),
        ("adopt_user", "alice", None),
        ("adopt_user", "bob", None),
        ("update_user", "alice", None),
        ("update_user", "bob", None),
        ("add_block", "alice", "mallory"),
        ("set_whitelist_mode", "alice", None),
        ("add_whitelist", "alice", "bob"),
    }
    assert changes[("update_user", "alice", None)]["after"] == {
        "name": "Alice Ng",
        "avatar": "https://example.com/alice.png",
        "tags": ["beta", "staff"],
        "profile": PROFILE,
    }
    assert "written again" in changes[("reactivate_user", "alice", None)]["note"]
    apply(path)
    in_sync(path)
    store = Store(emulator.db_path, writable=False)
    restored = store.get_user("alice")
    store.close()
    assert restored is not None and restored.name == "Alice Ng" and restored.tags == ("beta", "staff")


def test_nexconn_a_deactivated_user_is_drift_until_reactivated(
    tmp_path: Path, emulator: EmulatorProcess
) -> None:
    path = write(tmp_path / "team.yaml", nexconn_provider(emulator), {"bob": BOB})
    apply(path)
    store = Store(emulator.db_path)
    store.set_active(["bob"], False)  # deactivated in the console
    store.close()
    age_deactivations(emulator.db_path)
    drift = chatroster("drift", str(path), "--format", "json", cwd=tmp_path)
    assert drift.returncode == 2, drift.stderr
    kinds = {(d["uid"], d["kind"]) for d in json.loads(drift.stdout)["differences"]}
    assert ("bob", "managed") in kinds
    apply(path)
    assert chatroster("drift", str(path), cwd=tmp_path).returncode == 0


# ----------------------------------------------------------------------- CometChat


def cometchat_provider(emulator: EmulatorProcess) -> dict[str, Any]:
    return {
        "type": "cometchat",
        "app_id": "emulator-app",
        "url": emulator.base_url,
        "api_key": "${COMETCHAT_API_KEY:-emulator-api-key}",
    }


@pytest.mark.parametrize("alice", [ALICE, {**ALICE, "metadata": {"team": "core"}}])
def test_cometchat_a_pruned_user_put_back_is_reactivated_and_then_in_sync(
    tmp_path: Path, emulator: EmulatorProcess, alice: dict[str, Any]
) -> None:
    path = tmp_path / "team.yaml"
    back = prune_and_revert(path, cometchat_provider(emulator), alice)
    # CometChat keeps a deactivated user's data: only the state changes.
    assert sorted(actions(back)) == [("reactivate_user", "alice"), ("reactivate_user", "bob")]
    apply(path)
    in_sync(path)
