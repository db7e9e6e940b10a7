"""`--refresh changed`: plans that read only what may have changed (issue 12).

Apply records, with each user's ownership marker, a digest of the user's declaration
as applied; a plan with `--refresh changed` takes a user whose recorded digest equals
the digest of its declaration as in sync without per-user reads. Everything runs as a
user runs it: the CLI as a subprocess against `chatroster emulator` as a real process
on loopback; what was read is the emulator's own count of requests per endpoint
(`/_emulator/stats`), and changes "made in the console" are written into the
emulator's store directly.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from emulator_process import SRC, EmulatorProcess

from chatroster.emulator.config import DEFAULT_API_KEY, DEFAULT_APP_ID, DEFAULT_APP_KEY, DEFAULT_APP_SECRET
from chatroster.model import User
from chatroster.providers.cometchat import MARKER_KEY
from chatroster.providers.nexconn.api import DIGEST_KEY
from chatroster.refresh import Awaited, digest
from chatroster.store import Store

ENV = {
    **os.environ,
    "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")])),
    "NO_COLOR": "1",
    "NEXCONN_APP_KEY": DEFAULT_APP_KEY,
    "NEXCONN_APP_SECRET": DEFAULT_APP_SECRET,
    "COMETCHAT_API_KEY": DEFAULT_API_KEY,
}
USERS = 12
OWNER = "chatroster"


# ------------------------------------------------------------------------ helpers


def uid(i: int) -> str:
    return f"u{i:02d}"


def declared(platform: str, n: int = USERS) -> dict[str, dict[str, Any]]:
    """Name, avatar, tags and (Nexconn) a hosted profile or (CometChat) metadata; every
    third user blocks the next one (every block target declared)."""
    users: dict[str, dict[str, Any]] = {}
    for i in range(n):
        user: dict[str, Any] = {
            "name": f"User {i}",
            "avatar": f"https://example.com/{i}.png",
            "tags": ["staff", f"team{i % 3}"],
        }
        if platform == "nexconn":
            user["profile"] = {
                "email": f"user{i}@example.com",
                "level": i % 5 + 1,
                "ext": {"ext_dept": "eng"},
            }
        else:
            user["metadata"] = {"team": f"t{i % 4}"}
        if i % 3 == 0:
            user["blocklist"] = [uid((i + 1) % n)]
        users[uid(i)] = user
    return users


def write_manifest(
    path: Path, platform: str, emulator: EmulatorProcess, users: dict[str, Any], **extra: Any
) -> Path:
    if platform == "nexconn":
        provider = {
            "type": "nexconn",
            "url": emulator.base_url,
            "app_key": "${NEXCONN_APP_KEY}",
            "app_secret": "${NEXCONN_APP_SECRET}",
            **extra.pop("provider", {}),
        }
    else:
        provider = {
            "type": "cometchat",
            "app_id": DEFAULT_APP_ID,
            "url": emulator.base_url,
            "api_key": "${COMETCHAT_API_KEY}",
        }
    document = {"version": 1, "provider": provider, "users": users, **extra}
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def chatroster(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chatroster", *map(str, args)],
        cwd=cwd,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def ok(result: subprocess.CompletedProcess[str], *codes: int) -> subprocess.CompletedProcess[str]:
    assert result.returncode in (codes or (0,)), result.stdout + result.stderr
    return result


def plan_json(manifest: Path, *args: str) -> dict[str, Any]:
    result = ok(chatroster("plan", manifest, "--format", "json", *args, cwd=manifest.parent))
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def calls(emulator: EmulatorProcess) -> Counter[str]:
    """Requests the emulator answered since its counters were reset, by endpoint."""
    found: Counter[str] = Counter()
    for endpoint, by_status in emulator.stats()["by_endpoint"].items():
        found[endpoint] += sum(by_status.values())
    return found


def changes_by_uid(plan: dict[str, Any]) -> set[str]:
    return {change["uid"] for change in plan["changes"]}


def recorded_digest(emulator: EmulatorProcess, platform: str, name: str) -> str | None:
    """The digest the platform holds for ``name``, as the vendor keeps it."""
    store = Store(emulator.db_path)
    try:
        user = store.get_user(name)
    finally:
        store.close()
    assert user is not None
    if platform == "nexconn":
        ext = dict((user.profile or {}).get("ext") or {})
        return ext.get(DIGEST_KEY)
    marker = dict((user.metadata or {}).get(MARKER_KEY) or {})
    return marker.get("digest")


def declared_digest(users: dict[str, dict[str, Any]], name: str) -> str:
    """What chatroster's digest of the declaration is (the manifest as `load` reads it)."""
    fields = dict(users[name])
    return digest(
        User(
            uid=name,
            name=fields.get("name"),
            avatar=fields.get("avatar"),
            tags=tuple(fields["tags"]) if "tags" in fields else None,
            profile=fields.get("profile"),
            metadata=fields.get("metadata"),
            blocklist=frozenset(fields["blocklist"]) if "blocklist" in fields else None,
        ),
        OWNER,
    )


def add_block_in_the_app(emulator: EmulatorProcess, blocker: str, target: str) -> None:
    """A block made outside the manifest (by the user, in the app)."""
    store = Store(emulator.db_path)
    try:
        store.add_relations("blocks", [(blocker, target)])
    finally:
        store.close()


#: The bulk reads of a plan, per platform: all a no-change `--refresh changed` costs.
BULK = {
    "nexconn": {
        "POST /v4/user/soft-deleted/list": 1,
        "POST /v4/user/ban/list": 1,
        "POST /v4/user/profile/list": 1,
    },
    "cometchat": {"GET /v3/users": 2, "GET /v3/roles": 1},
}
#: One user's reads beyond the bulk lists (a managed blocklist among them).
ONE_USER = {
    "nexconn": {
        "POST /v4/user/get": 1,
        "POST /v4/user/tag/batch/get": 1,
        "POST /v4/user/blocklist/get": 1,
    },
    "cometchat": {"GET /v3/users/{uid}/blockedusers": 1},
}


#: The writes of renaming one user whose digest is recorded (and its apply's reads).
WRITES_FOR_ONE = {
    # user/update, then the profile copy of the name; the stale digest is set to "-"
    # before, and the new one written after (each a profile read-modify-write).
    "nexconn": Counter(BULK["nexconn"])
    + Counter(ONE_USER["nexconn"])
    + Counter(
        {"POST /v4/user/update": 1, "POST /v4/user/profile/batch/get": 3, "POST /v4/user/profile/set": 3}
    ),
    # One PUT: the update carries the new digest in the marker.
    "cometchat": {"PUT /v3/users/{uid}": 1},
}


def applied(platform: str, emulator: EmulatorProcess, tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    """A manifest applied in full (Nexconn: with a ban, so that the ban list is read)."""
    users = declared(platform)
    extra: dict[str, Any] = {"bans": {uid(USERS - 1): {"until": "forever"}}} if platform == "nexconn" else {}
    manifest = write_manifest(tmp_path / "users.yaml", platform, emulator, users, **extra)
    first = plan_json(manifest)
    assert first["refresh"] == {"mode": "full", "trusted": 0, "records": USERS}
    ok(chatroster("apply", manifest, "--yes", cwd=tmp_path))
    return manifest, users


PLATFORMS = ("nexconn", "cometchat")


# ------------------------------------------------------------- the digest (pure)


def test_the_digest_is_stable_across_orders_and_changes_with_every_compared_field() -> None:
    alice = User(
        uid="alice",
        name="Alice",
        tags=("b", "a"),
        metadata={"x": 1, "y": {"b": 2, "a": 1}},
        blocklist=frozenset({"m", "n"}),
        friends={"bob": {"alias": "B"}},
    )
    same = User(
        uid="alice",
        name="Alice",
        tags=("a", "b"),
        metadata={"y": {"a": 1, "b": 2}, "x": 1},
        blocklist=frozenset({"n", "m"}),
        friends={"bob": {"alias": "B"}},
    )
    assert digest(alice, OWNER) == digest(same, OWNER)
    assert digest(alice, OWNER).startswith("v1:") and len(digest(alice, OWNER)) == 27
    variants = [
        alice.evolve(name="Alicia"),
        alice.evolve(tags=("a",)),
        alice.evolve(metadata={"x": 2}),
        alice.evolve(blocklist=frozenset()),
        alice.evolve(blocklist=None),
        alice.evolve(active=False),
        alice.evolve(friends={"bob": {"alias": "Bobby"}}),
        alice.evolve(friend_permission="nobody"),
        alice.evolve(whitelist_mode=True),
        alice.evolve(profile={"email": "a@example.com"}),
    ]
    digests = {digest(variant, OWNER) for variant in variants} | {digest(alice, "other-owner")}
    assert len(digests) == len(variants) + 1 and digest(alice, OWNER) not in digests


def test_the_digests_computed_during_the_read_are_the_declarations_and_an_error_reaches_the_reader() -> None:
    users = {uid: User(uid=uid, name=uid.title(), tags=("a",)) for uid in ("alice", "bob", "carol")}
    manifest = SimpleNamespace(owner=OWNER, desired=SimpleNamespace(users=users))
    awaited = Awaited(manifest, leave_out=frozenset({"carol"}))  # type: ignore[arg-type]
    assert dict(awaited) == {uid: digest(users[uid], OWNER) for uid in ("alice", "bob")}
    assert awaited.get("carol") is None and len(awaited) == 2

    broken = SimpleNamespace(owner=OWNER, desired=SimpleNamespace(users={"alice": "not a user"}))
    failing = Awaited(broken)  # type: ignore[arg-type]
    with pytest.raises(AttributeError):
        failing.get("alice")


# -------------------------------------------------------------------------- tests


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_no_change_plan_with_changed_refresh_reads_only_the_bulk_lists(
    platform: str, emulator: EmulatorProcess, tmp_path: Path
) -> None:
    manifest, users = applied(platform, emulator, tmp_path)
    assert recorded_digest(emulator, platform, uid(0)) == declared_digest(users, uid(0))
    emulator.reset()

    plan = plan_json(manifest, "--refresh", "changed")

    assert plan["changes"] == []
    assert plan["refresh"] == {"mode": "changed", "trusted": USERS, "records": 0}
    assert calls(emulator) == BULK[platform]
    text = ok(chatroster("plan", manifest, "--refresh", "changed", cwd=tmp_path)).stdout
    assert f"Refresh: changed ({USERS} user(s) trusted without per-user reads)." in text


@pytest.mark.parametrize("platform", PLATFORMS)
def test_editing_one_users_declaration_reads_and_plans_only_that_user(
    platform: str, emulator: EmulatorProcess, tmp_path: Path
) -> None:
    manifest, users = applied(platform, emulator, tmp_path)
    users[uid(3)]["name"] = "Renamed Three"
    write_manifest(manifest, platform, emulator, users, **_extra(manifest))
    emulator.reset()

    plan = plan_json(manifest, "--refresh", "changed")

    assert plan["refresh"] == {"mode": "changed", "trusted": USERS - 1, "records": 1}
    assert [(c["action"], c["uid"]) for c in plan["changes"]] == [("update_user", uid(3))]
    assert calls(emulator) == Counter(BULK[platform]) + Counter(ONE_USER[platform])
    markdown = ok(chatroster("plan", manifest, "--refresh", "changed", "--format", "markdown", cwd=tmp_path))
    assert "Refresh: `changed` (11 user(s) trusted without per-user reads); apply records the" in (
        markdown.stdout
    )

    emulator.reset()
    ok(chatroster("apply", manifest, "--yes", "--refresh", "changed", cwd=tmp_path))
    assert recorded_digest(emulator, platform, uid(3)) == declared_digest(users, uid(3))
    assert {k: v for k, v in calls(emulator).items() if not k.startswith("GET")} == WRITES_FOR_ONE[platform]
    after = plan_json(manifest, "--refresh", "changed")
    assert after["changes"] == [] and after["refresh"]["trusted"] == USERS


def _extra(manifest: Path) -> dict[str, Any]:
    document = yaml.safe_load(manifest.read_text(encoding="utf-8"))
    return {key: document[key] for key in ("bans",) if key in document}


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_change_made_outside_the_manifest_is_missed_by_changed_and_found_by_full_and_drift(
    platform: str, emulator: EmulatorProcess, tmp_path: Path
) -> None:
    manifest, _ = applied(platform, emulator, tmp_path)
    add_block_in_the_app(emulator, uid(0), uid(5))  # u00's blocklist is managed: [u01]

    changed = ok(chatroster("plan", manifest, "--refresh", "changed", "--detailed-exitcode", cwd=tmp_path))
    full = ok(chatroster("plan", manifest, "--detailed-exitcode", cwd=tmp_path), 2)
    drift = ok(chatroster("drift", manifest, cwd=tmp_path), 2)

    assert "No changes." in changed.stdout
    assert f"- remove_block {uid(0)} → {uid(5)}" in full.stdout
    assert uid(0) in drift.stdout and "managed" in drift.stdout
    ok(chatroster("apply", manifest, "--yes", cwd=tmp_path))
    assert ok(chatroster("plan", manifest, "--detailed-exitcode", cwd=tmp_path)).returncode == 0


def test_a_user_whose_change_failed_gets_no_new_digest_and_is_read_again(
    emulator: EmulatorProcess, tmp_path: Path
) -> None:
    manifest, users = applied("nexconn", emulator, tmp_path)
    old = recorded_digest(emulator, "nexconn", uid(4))
    # The emulator refuses ext keys not declared in the console, as the vendor does.
    users[uid(4)]["profile"]["ext"] = {"ext_undeclared": "x"}
    users[uid(4)]["tags"] = ["moved"]
    users[uid(6)]["name"] = "Renamed Six"
    write_manifest(manifest, "nexconn", emulator, users, **_extra(manifest))

    failed = chatroster(
        "apply", manifest, "--yes", "--continue-on-error", "--refresh", "changed", cwd=tmp_path
    )

    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "ext_undeclared" in failed.stderr
    assert old is not None
    assert recorded_digest(emulator, "nexconn", uid(4)) == "-"  # removed before its changes
    assert recorded_digest(emulator, "nexconn", uid(6)) == declared_digest(users, uid(6))
    assert "Recorded the applied state of 1 user(s)" in failed.stderr
    emulator.reset()
    plan = plan_json(manifest, "--refresh", "changed")
    assert plan["refresh"]["trusted"] == USERS - 1
    assert changes_by_uid(plan) == {uid(4)}
    assert calls(emulator)["POST /v4/user/get"] == 1


def test_after_a_kill_mid_apply_a_rerun_converges_and_changed_plans_agree(
    emulator: EmulatorProcess, tmp_path: Path
) -> None:
    users = declared("nexconn", 90)
    manifest = write_manifest(tmp_path / "users.yaml", "nexconn", emulator, users, provider={"rate": 20})
    command = [sys.executable, "-m", "chatroster", "apply", str(manifest), "--yes", "--refresh", "changed"]
    apply = subprocess.Popen(
        command, cwd=tmp_path, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        _wait_for_writes(emulator, "POST /v4/user/profile/set", 20, apply)
    finally:
        apply.send_signal(signal.SIGKILL)
        apply.wait(30)
        if apply.stderr is not None:
            apply.stderr.close()
    interrupted = plan_json(manifest, "--refresh", "changed")
    assert interrupted["changes"], "the kill came after the apply finished"

    ok(chatroster("apply", manifest, "--yes", "--refresh", "changed", cwd=tmp_path))

    changed = plan_json(manifest, "--refresh", "changed")
    full = plan_json(manifest)
    assert changed["changes"] == [] and full["changes"] == []
    assert changed["refresh"] == {"mode": "changed", "trusted": 90, "records": 0}


def _wait_for_writes(
    emulator: EmulatorProcess, endpoint: str, count: int, process: subprocess.Popen[Any]
) -> None:
    """Until the emulator has answered ``count`` of ``endpoint`` (or the apply ended)."""
    for _ in range(1200):
        if calls(emulator)[endpoint] >= count or process.poll() is not None:
            return
        time.sleep(0.05)
    raise AssertionError(f"the apply made fewer than {count} {endpoint} calls in time")


def test_a_saved_plan_keeps_its_refresh_and_apply_plan_reads_the_same_way(
    emulator: EmulatorProcess, tmp_path: Path
) -> None:
    manifest, users = applied("cometchat", emulator, tmp_path)
    users[uid(2)]["tags"] = ["moved"]
    write_manifest(manifest, "cometchat", emulator, users)
    saved = tmp_path / "plan.json"
    ok(chatroster("plan", manifest, "--refresh", "changed", "--out", saved, cwd=tmp_path))
    assert json.loads(saved.read_text())["refresh"] == {"mode": "changed", "trusted": USERS - 1, "records": 1}

    mixed = chatroster("apply", "--plan", saved, "--refresh", "full", "--yes", cwd=tmp_path)
    assert mixed.returncode == 1 and "made with --refresh changed" in mixed.stderr
    emulator.reset()
    ok(chatroster("apply", "--plan", saved, "--yes", cwd=tmp_path))

    assert calls(emulator)["GET /v3/users/{uid}/blockedusers"] == 0  # u02 manages no blocklist
    assert recorded_digest(emulator, "cometchat", uid(2)) == declared_digest(users, uid(2))
    assert plan_json(manifest, "--refresh", "changed")["refresh"]["trusted"] == USERS


def test_a_full_apply_with_nothing_to_change_records_missing_digests_and_says_so(
    emulator: EmulatorProcess, tmp_path: Path
) -> None:
    manifest, users = applied("cometchat", emulator, tmp_path)
    store = Store(emulator.db_path)  # as after an upgrade: users without a digest
    try:
        for name in (uid(1), uid(7)):
            user = store.get_user(name)
            assert user is not None and user.metadata is not None
            metadata = json.loads(json.dumps(dict(user.metadata), default=dict))
            metadata[MARKER_KEY].pop("digest")
            store.update_user(name, {"metadata": metadata})
    finally:
        store.close()

    plan = ok(chatroster("plan", manifest, "--detailed-exitcode", cwd=tmp_path))
    assert "Refresh: full; apply records the applied state of 2 user(s)." in plan.stdout
    assert "No changes." in plan.stdout
    done = ok(chatroster("apply", manifest, "--yes", cwd=tmp_path))
    assert "Recorded the applied state of 2 user(s)" in done.stderr
    assert plan_json(manifest, "--refresh", "changed")["refresh"]["trusted"] == USERS


def test_changed_refresh_on_the_local_platform_reads_fully_and_says_so(tmp_path: Path) -> None:
    manifest = tmp_path / "users.yaml"
    manifest.write_text(
        yaml.safe_dump({"version": 1, "users": {"alice": {"name": "Alice", "blocklist": []}}}),
        encoding="utf-8",
    )
    ok(chatroster("apply", manifest, "--yes", "--refresh", "changed", cwd=tmp_path))
    result = ok(chatroster("plan", manifest, "--refresh", "changed", "--format", "json", cwd=tmp_path))
    assert json.loads(result.stdout)["refresh"] == {"mode": "full", "trusted": 0, "records": 0}
    assert "--refresh changed reads fully, the same as --refresh full" in result.stderr


def test_a_users_one_write_carries_its_digest_with_no_write_of_its_own(
    emulator: EmulatorProcess, tmp_path: Path
) -> None:
    # Nexconn: a create without tags ends with its profile/set, which carries the digest.
    users = {uid(i): {"name": f"User {i}", "profile": {"level": 1}} for i in range(5)}
    manifest = write_manifest(tmp_path / "users.yaml", "nexconn", emulator, users)
    emulator.reset()

    done = ok(chatroster("apply", manifest, "--yes", cwd=tmp_path))

    writes = calls(emulator)
    assert writes["POST /v4/user/profile/set"] == 5 and writes["POST /v4/user/profile/batch/get"] == 0
    assert "Recorded the applied state of 5 user(s)" in done.stderr
    assert all(recorded_digest(emulator, "nexconn", name) == _digest_of(users, name) for name in users)
    assert plan_json(manifest, "--refresh", "changed")["refresh"]["trusted"] == 5


def _digest_of(users: dict[str, dict[str, Any]], name: str) -> str:
    return digest(User(uid=name, name=users[name]["name"], profile=users[name]["profile"]), OWNER)
