"""`chatroster show PATH UID...`: users as the platform holds them, masked like a plan,
read-only, on all three platforms. The CLI runs as a subprocess against a real SQLite
store or the emulator on loopback.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import yaml
from cli_process import chatroster
from emulator_process import EmulatorProcess

from chatroster.store import Store

ALICE = {
    "name": "Alice Ng",
    "tags": ["staff", "beta"],
    "blocklist": ["bob"],
}
BOB = {"name": "Bob Tan"}


def write(path: Path, provider: dict[str, Any], users: dict[str, Any], **extra: Any) -> Path:
    document = {"version": 1, "provider": provider, "owner": "ops", "users": users, **extra}
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def show_json(path: Path, *uids: str, personal: bool = False) -> tuple[int, dict[str, Any]]:
    args = ["show", str(path), *uids, "--format", "json", *(["--show-personal"] if personal else [])]
    result = chatroster(*args, cwd=path.parent)
    return result.returncode, json.loads(result.stdout)


def by_uid(shown: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {user["uid"]: user for user in shown["users"]}


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ------------------------------------------------------------------ local platform


def local(tmp_path: Path) -> dict[str, Any]:
    return {"type": "local", "path": "store.db"}


def test_local_shows_every_field_masked_like_a_plan_and_exits_1_for_an_unknown_uid(
    tmp_path: Path,
) -> None:
    alice = {
        **ALICE,
        "metadata": {"phone": "+65 1234 5678", "team": "core"},
        "profile": {"email": "alice@example.com", "level": 3},
        "whitelist": ["bob"],
    }
    path = write(
        tmp_path / "team.yaml",
        local(tmp_path),
        {"alice": alice, "bob": BOB},
        bans={"bob": {"until": "forever"}},
    )
    assert chatroster("apply", str(path), "--yes", cwd=tmp_path).returncode == 0
    status, shown = show_json(path, "alice", "ghost", "bob")
    assert status == 1 and shown["unknown"] == ["ghost"]
    users = by_uid(shown)
    assert list(users) == ["alice", "ghost", "bob"]  # in the order asked, the unknown too
    assert users["ghost"] == {"uid": "ghost", "exists": False}
    alice_shown = users["alice"]
    assert (alice_shown["owner"], alice_shown["active"], alice_shown["name"]) == ("ops", True, "Alice Ng")
    assert alice_shown["tags"] == ["beta", "staff"] and alice_shown["ban"] is None
    assert alice_shown["lists"] == {"blocklist": 1, "whitelist": 1} and alice_shown["whitelist_mode"]
    assert alice_shown["profile"]["email"].startswith("masked:") and alice_shown["profile"]["level"] == 3
    assert (
        alice_shown["metadata"]["phone"].startswith("masked:") and alice_shown["metadata"]["team"] == "core"
    )
    assert set(alice_shown) >= {"avatar", "link", "role", "status_message", "tokens_valid_after", "online"}
    assert users["bob"]["ban"] == {"until": "forever"}
    _, personal = show_json(path, "alice", personal=True)
    assert by_uid(personal)["alice"]["profile"]["email"] == "alice@example.com"
    text = chatroster("show", str(path), "alice", "ghost", cwd=tmp_path)
    assert text.returncode == 1
    assert "alice (active, owner 'ops')" in text.stdout and "ghost: not on the platform" in text.stdout
    assert "alice@example.com" not in text.stdout and "blocklist: 1 user(s)" in text.stdout
    assert "not on the platform: ghost" in text.stderr


def test_local_show_writes_nothing(tmp_path: Path) -> None:
    path = write(tmp_path / "team.yaml", local(tmp_path), {"alice": ALICE, "bob": BOB})
    assert chatroster("apply", str(path), "--yes", cwd=tmp_path).returncode == 0
    store = tmp_path / "store.db"
    before = digest(store)
    assert chatroster("show", str(path), "alice", cwd=tmp_path).returncode == 0
    assert digest(store) == before
    # A missing store is not created: every uid is unknown.
    other = write(tmp_path / "other.yaml", {"type": "local", "path": "missing.db"}, {"alice": ALICE})
    assert chatroster("show", str(other), "alice", cwd=tmp_path).returncode == 1
    assert not (tmp_path / "missing.db").exists()


def test_local_shows_a_deactivated_user(tmp_path: Path) -> None:
    path = write(tmp_path / "team.yaml", local(tmp_path), {"alice": {**ALICE, "active": False}, "bob": BOB})
    assert chatroster("apply", str(path), "--yes", cwd=tmp_path).returncode == 0
    _, shown = show_json(path, "alice")
    assert by_uid(shown)["alice"]["active"] is False


# ------------------------------------------------------------------------- Nexconn


def test_nexconn_shows_the_user_with_its_connection_status(tmp_path: Path, emulator: EmulatorProcess) -> None:
    provider = {
        "type": "nexconn",
        "url": emulator.base_url,
        "app_key": "${NEXCONN_APP_KEY:-emulator-app-key}",
        "app_secret": "${NEXCONN_APP_SECRET:-emulator-app-secret}",
    }
    alice = {**ALICE, "profile": {"email": "alice@example.com", "ext": {"ext_dept": "eng"}}}
    users = {"alice": alice, "bob": BOB, "carol": {"name": "Carol", "active": False}}
    path = write(tmp_path / "team.yaml", provider, users)
    applied = chatroster("apply", str(path), "--yes", cwd=tmp_path)
    assert applied.returncode == 0, applied.stderr
    before = emulator.stats()["by_endpoint"]
    status, shown = show_json(path, "alice", "carol", "ghost")
    assert status == 1 and shown["unknown"] == ["ghost"]
    users_shown = by_uid(shown)
    alice_shown = users_shown["alice"]
    assert (alice_shown["name"], alice_shown["tags"], alice_shown["owner"]) == (
        "Alice Ng",
        ["beta", "staff"],
        "ops",
    )
    assert alice_shown["profile"]["ext"]["ext_dept"].startswith("masked:")  # hosted profile text
    assert alice_shown["online"] is False  # connection-status "0"
    assert alice_shown["lists"] == {"blocklist": 1, "whitelist": 0}
    assert "link" not in alice_shown  # a field Nexconn does not have
    carol = users_shown["carol"]
    assert carol["active"] is False and carol["online"] is None
    after = emulator.stats()["by_endpoint"]
    asked = {k: sum(v.values()) - sum(before.get(k, {}).values()) for k, v in after.items()}
    assert asked.get("POST /v4/user/connection-status/get") == 2  # the users that exist
    reads = {
        "POST /v4/user/get",
        "POST /v4/user/connection-status/get",
        "POST /v4/user/soft-deleted/list",
        "POST /v4/user/ban/list",
        "POST /v4/user/tag/batch/get",
        "POST /v4/user/profile/batch/get",
        "POST /v4/user/blocklist/get",
        "POST /user/whitelist/query.json",
        "POST /user/whitesetting/query.json",
    }
    assert {endpoint for endpoint, n in asked.items() if n} <= reads  # nothing written


# ----------------------------------------------------------------------- CometChat


def test_cometchat_shows_the_user_with_its_status(tmp_path: Path, emulator: EmulatorProcess) -> None:
    provider = {
        "type": "cometchat",
        "app_id": "emulator-app",
        "url": emulator.base_url,
        "api_key": "${COMETCHAT_API_KEY:-emulator-api-key}",
    }
    alice = {
        **ALICE,
        "metadata": {"team": "core", "@private": {"email": "alice@example.com"}},
        "role": "default",
    }
    carol = {"name": "Carol", "blocklist": ["bob"], "active": False}
    path = write(tmp_path / "team.yaml", provider, {"alice": alice, "bob": BOB, "carol": carol})
    applied = chatroster("apply", str(path), "--yes", cwd=tmp_path)
    assert applied.returncode == 0, applied.stderr
    status, shown = show_json(path, "alice", "bob", "carol")
    assert status == 0 and shown["unknown"] == []
    # The vendor hides a deactivated user's status and blocks: unknown, not "none".
    carol_shown = by_uid(shown)["carol"]
    assert carol_shown["active"] is False and carol_shown["online"] is None
    assert carol_shown["lists"] == {"blocklist": None}
    alice_shown = by_uid(shown)["alice"]
    assert alice_shown["owner"] == "ops" and alice_shown["online"] is False
    assert alice_shown["metadata"]["@private"]["email"].startswith("masked:")
    assert alice_shown["lists"] == {"blocklist": 1} and "ban" not in alice_shown
    store = Store(emulator.db_path, writable=False)
    assert store.get_user("alice") is not None
    store.close()
