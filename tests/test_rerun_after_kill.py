"""Reruns finish without --force: an apply killed with SIGKILL at any point is finished
by the same command again, with every change made once (PRODUCT.md, "Safety limits" and
"Idempotent and convergent").

Everything runs as a user runs it: `chatroster apply` as a real process, killed with
SIGKILL at a point chosen by a seeded random number (fixed seeds, so a failure can be
reproduced), then the same command again without --force. Nexconn and CometChat are
reached through `chatroster emulator` on loopback; its counters (GET /_emulator/stats)
say which writes were made and its store (opened with `Store`) what they left.

Where the kill lands is measured in completed writes rather than in seconds, so that a
loaded machine moves it no further than a few calls: the apply is killed once the
emulator has answered a seeded random number of its writes (the local platform: once
its store holds a seeded random number of the changes). Each test checks that the kill
left some but not all of the changes made, and says where it landed (``-s`` shows it).
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
import yaml
from emulator_process import EmulatorProcess

from chatroster.emulator.config import (
    DEFAULT_API_KEY,
    DEFAULT_APP_ID,
    DEFAULT_APP_KEY,
    DEFAULT_APP_SECRET,
)
from chatroster.model import Policy, User
from chatroster.providers.cometchat import MARKER_KEY
from chatroster.providers.nexconn import MARKER_KEYS, OWNER_KEY
from chatroster.store import Store

Factory = Callable[..., EmulatorProcess]

SEEDS = (42, 2024)
"""Fixed seeds of the kill point: a failure names its seed and happens again with it."""

OWNER = "chatroster"
"""The manifests declare no owner: the default marker."""

ENV = {
    **os.environ,
    "NO_COLOR": "1",
    "NEXCONN_APP_KEY": DEFAULT_APP_KEY,
    "NEXCONN_APP_SECRET": DEFAULT_APP_SECRET,
    "COMETCHAT_API_KEY": DEFAULT_API_KEY,
}

COMMAND_TIMEOUT = 180
KILL_TIMEOUT = 120
"""How long an apply may run before its kill point is reached (a hung apply fails)."""

#: Users per platform: enough that the apply takes several seconds, few enough that a
#: test stays well under half a minute on a loaded two-core machine.
USERS = {"local": 3000, "nexconn": 240, "cometchat": 200}

#: CometChat has no batch create: the manifest's own rate settings (requests a minute
#: per rate class, which chatroster keeps 10% under) pace the apply to a few seconds.
COMETCHAT_RATE = 3600

#: The emulator's write endpoints, as its counters label them.
WRITES = {
    "nexconn": (
        "POST /v4/auth/access-token/issue",
        "POST /v4/user/profile/set",
        "POST /v4/user/profile/delete",
        "POST /v4/user/tag/batch/set",
        "POST /v4/user/blocklist/add",
        "POST /v4/user/blocklist/remove",
        "POST /v4/user/update",
    ),
    "cometchat": (
        "POST /v3/users",
        "PUT /v3/users/{uid}",
        "POST /v3/users/{uid}/blockedusers",
        "DELETE /v3/users/{uid}/blockedusers",
    ),
}
REGISTER = {"nexconn": "POST /v4/auth/access-token/issue", "cometchat": "POST /v3/users"}
BLOCK = {"nexconn": "POST /v4/user/blocklist/add", "cometchat": "POST /v3/users/{uid}/blockedusers"}

APPLIED = re.compile(r"^Applied (\d+) change\(s\)\.$", re.MULTILINE)
PLAN_LINE = re.compile(r"^Plan: .*$", re.MULTILINE)


# ------------------------------------------------------------------------ manifests


def uid(i: int) -> str:
    return f"u{i:04d}"


def declared_users(platform: str, n: int) -> dict[str, dict[str, Any]]:
    """Names, tags, profile fields (Nexconn, local) or metadata (CometChat, local) and
    blocklists: two blocks for three users in four, ``blocklist: []`` for the fourth."""
    users: dict[str, dict[str, Any]] = {}
    for i in range(n):
        user: dict[str, Any] = {"name": f"User {i}", "tags": ["staff", f"team-{i % 3}"]}
        if platform in ("local", "nexconn"):
            user["profile"] = {
                "email": f"user{i}@example.com",
                "location": "SG",
                "level": i % 5 + 1,
                "ext": {"ext_dept": f"d{i % 4}"},
            }
        if platform in ("local", "cometchat"):
            user["metadata"] = {"team": f"t{i % 4}", "floor": i % 7}
        user["blocklist"] = [] if i % 4 == 3 else sorted({uid((i + 1) % n), uid((i + 5) % n)})
        users[uid(i)] = user
    return users


def provider_section(platform: str, emulator: EmulatorProcess | None) -> dict[str, Any]:
    if platform == "local":
        return {"type": "local"}
    assert emulator is not None
    if platform == "nexconn":
        return {
            "type": "nexconn",
            "url": emulator.base_url,
            "app_key": "${NEXCONN_APP_KEY}",
            "app_secret": "${NEXCONN_APP_SECRET}",
        }
    return {
        "type": "cometchat",
        "app_id": DEFAULT_APP_ID,
        "url": emulator.base_url,
        "api_key": "${COMETCHAT_API_KEY}",
        "rate_core": COMETCHAT_RATE,
        "rate_standard": COMETCHAT_RATE,
    }


def write_manifest(path: Path, provider: dict[str, Any], users: dict[str, Any]) -> None:
    """A manifest with the default policy (no ``policy`` section)."""
    path.write_text(yaml.safe_dump({"version": 1, "provider": provider, "users": users}))


def blockers(users: dict[str, dict[str, Any]]) -> int:
    return sum(1 for user in users.values() if user.get("blocklist"))


def change_count(users: dict[str, dict[str, Any]]) -> int:
    """Changes of a full first apply: one create per user, one add_block per entry."""
    return len(users) + sum(len(user.get("blocklist") or ()) for user in users.values())


# ------------------------------------------------------------------------- commands


def chatroster(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chatroster", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        env=ENV,
        check=False,
    )


def start_apply(manifest: Path) -> subprocess.Popen[str]:
    """The apply to kill; its stderr goes to a file beside the manifest (`said`)."""
    with open(manifest.parent / "killed-apply.stderr", "w") as stderr:
        return subprocess.Popen(
            [sys.executable, "-m", "chatroster", "apply", str(manifest), "--yes"],
            cwd=manifest.parent,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            text=True,
            env=ENV,
        )


def said(manifest: Path) -> str:
    """The end of what the killed apply printed on stderr."""
    return (manifest.parent / "killed-apply.stderr").read_text()[-3000:]


def shown(result: subprocess.CompletedProcess[str]) -> str:
    """What a failed command said, short enough to read in an assertion message."""
    plan = "\n".join(PLAN_LINE.findall(result.stdout))
    return (
        f"exit {result.returncode}\n--- plan line(s) ---\n{plan}\n"
        f"--- stdout (end) ---\n{result.stdout[-1500:]}\n--- stderr (end) ---\n"
        f"{result.stderr[-3000:]}"
    )


def kill(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL


def ended_early(process: subprocess.Popen[str], manifest: Path, point: str) -> AssertionError:
    return AssertionError(
        f"apply ended (exit {process.returncode}) before its kill point ({point}):\n{said(manifest)}"
    )


def rerun_converges(manifest: Path) -> subprocess.CompletedProcess[str]:
    """The same command again, without --force: exit 0, then nothing left to plan."""
    again = chatroster("apply", str(manifest), "--yes", cwd=manifest.parent)
    assert again.returncode == 0, "the rerun did not finish the apply:\n" + shown(again)
    applied = APPLIED.search(again.stdout)
    assert applied and int(applied.group(1)) > 0, (
        "the rerun had nothing to do, so the kill came too late to test anything:\n" + shown(again)
    )
    final = chatroster("plan", str(manifest), "--detailed-exitcode", cwd=manifest.parent)
    assert final.returncode == 0, "changes are left after the rerun:\n" + shown(final)
    print(
        f"\n[{manifest.parent.name}] rerun: "
        + " | ".join(PLAN_LINE.findall(again.stdout))
        + f" -> {applied.group(0)}"
    )
    return again


# ------------------------------------------------------------------- emulator helpers


def writes(stats: dict[str, Any], platform: str, labels: Iterable[str] | None = None) -> int:
    """Requests the emulator answered on ``labels`` (default: every write endpoint)."""
    counts = stats["by_endpoint"]
    return sum(sum(counts.get(label, {}).values()) for label in (labels or WRITES[platform]))


def succeeded(stats: dict[str, Any], label: str) -> int:
    """Calls to ``label`` the emulator answered with success."""
    return int(stats["by_endpoint"].get(label, {}).get("200", 0))


def kill_after_writes(
    process: subprocess.Popen[str],
    manifest: Path,
    emulator: EmulatorProcess,
    platform: str,
    target: int,
    labels: Iterable[str] | None = None,
) -> int:
    """SIGKILL the apply once the emulator has answered ``target`` writes; then wait until
    the requests it had in flight are answered, and return how many writes were made."""
    labels = tuple(labels or WRITES[platform])
    deadline = time.monotonic() + KILL_TIMEOUT
    try:
        while writes(emulator.stats(), platform, labels) < target:
            if process.poll() is not None:
                raise ended_early(process, manifest, f"{target} writes")
            assert time.monotonic() < deadline, f"apply made fewer than {target} writes in time"
            time.sleep(0.005)
    finally:
        if process.poll() is None:
            kill(process)
    return quiet_writes(emulator, platform)


def quiet_writes(emulator: EmulatorProcess, platform: str) -> int:
    """Writes answered once the emulator is idle: a request the killed process had sent
    is still carried out, and the rerun must see its effect when it reads."""
    last, steady = -1, 0
    while steady < 3:
        total = emulator.stats()["total"]
        steady = steady + 1 if total == last else 0
        last = total
        time.sleep(0.1)
    return writes(emulator.stats(), platform)


def open_store(path: Path) -> Store:
    return Store(path)


def blocks_of(store: Store) -> dict[str, set[str]]:
    return {u: set(targets) for u, targets in store.relations("blocks").items() if targets}


def wanted_blocks(users: dict[str, dict[str, Any]]) -> dict[str, set[str]]:
    return {u: set(user["blocklist"]) for u, user in users.items() if user.get("blocklist")}


def plain(value: Any) -> Any:
    """Frozen store values (mappings, tuples) as plain JSON-like values."""
    if isinstance(value, dict) or hasattr(value, "items"):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def owner_of(platform: str, user: User) -> str | None:
    if platform == "nexconn":
        return plain(user.profile or {}).get("ext", {}).get(OWNER_KEY) or user.owner
    if platform == "cometchat":
        marker = plain(user.metadata or {}).get(MARKER_KEY) or {}
        return marker.get("owner") or user.owner
    return user.owner


def assert_as_declared(platform: str, store: Store, users: dict[str, dict[str, Any]]) -> None:
    """Exactly the declared users, each with every declared field and its owner marker,
    and every blocklist exactly as declared."""
    live = store.all_users()
    assert sorted(live) == sorted(users), (
        f"{len(live)} users on the platform for {len(users)} declared; extra: "
        f"{sorted(set(live) - set(users))[:10]}, missing: {sorted(set(users) - set(live))[:10]}"
    )
    wrong = []
    for u, want in users.items():
        have = live[u]
        got: dict[str, Any] = {
            "name": have.name,
            "tags": sorted(plain(have.tags or ())),
            "owner": owner_of(platform, have),
            "active": have.active,
        }
        expected: dict[str, Any] = {
            "name": want["name"],
            "tags": sorted(want["tags"]),
            "owner": OWNER,
            "active": True,
        }
        if "profile" in want:
            profile = plain(have.profile or {})
            ext = {k: v for k, v in (profile.get("ext") or {}).items() if k not in MARKER_KEYS}
            # Nexconn keeps a copy of name and avatar in the hosted profile (the push
            # data of a soft-deleted user is lost); it must be in step with the name.
            if platform == "nexconn":
                got["name copy"] = profile.pop("name", None)
                expected["name copy"] = want["name"]
                profile.pop("avatar", None)
            got["profile"] = {**{k: v for k, v in profile.items() if k != "ext"}, "ext": ext}
            expected["profile"] = want["profile"]
        if "metadata" in want:
            got["metadata"] = {k: v for k, v in plain(have.metadata or {}).items() if k != MARKER_KEY}
            expected["metadata"] = want["metadata"]
        if got != expected:
            wrong.append(f"{u}: {got} != {expected}")
    assert not wrong, f"{len(wrong)} user(s) not as declared, e.g.\n" + "\n".join(wrong[:5])
    assert blocks_of(store) == wanted_blocks(users)


# ------------------------------------------------------------ kill -9, then rerun


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("platform", ["nexconn", "cometchat"])
def test_a_vendor_apply_killed_at_a_random_point_is_finished_by_the_same_command(
    platform: str, seed: int, tmp_path: Path, emulator: EmulatorProcess
) -> None:
    rng = random.Random(seed)
    n = USERS[platform]
    users = declared_users(platform, n)
    manifest = tmp_path / "team.yaml"
    write_manifest(manifest, provider_section(platform, emulator), users)
    # A full apply makes: Nexconn a token issue and a profile write per user, a tag
    # call per distinct tag list, a blocklist call per blocker; CometChat a create per
    # user and a block call per blocker. The kill lands anywhere up to 85% of them.
    registers = 2 * n + 3 if platform == "nexconn" else n
    total = registers + blockers(users)
    target = rng.randint(1, int(total * 0.85))

    process = start_apply(manifest)
    made = kill_after_writes(process, manifest, emulator, platform, target)
    store = open_store(emulator.db_path)
    try:
        registered = len(store.all_users())
        print(
            f"\n[{tmp_path.name}] {platform} seed {seed}: killed at {target}/{total} "
            f"writes ({made} answered), {registered}/{n} users registered, "
            f"{sum(map(len, blocks_of(store).values()))} blocks"
        )
        assert 0 < made < total and registered > 0, "the kill made all or none of the writes"
        at_kill = emulator.stats()

        rerun_converges(manifest)

        assert_as_declared(platform, store, users)
    finally:
        store.close()
    stats = emulator.stats()
    counters = (
        f"calls when killed: {at_kill['by_endpoint']}\ncalls in all: "
        f"{stats['by_endpoint']}\nemulator output (end):\n{emulator.text[-3000:]}"
    )
    # Each user registered once, each blocker's blocklist written once, over both runs
    # (a request the kill cut off before the emulator read it is not a write) ...
    assert succeeded(stats, REGISTER[platform]) == n, counters
    assert succeeded(stats, BLOCK[platform]) == blockers(users), counters
    # ... and after the kill the emulator never had to refuse or fail a call (404:
    # Nexconn's user/get of a uid not registered yet).
    after_kill = {
        status: count - at_kill["by_status"].get(status, 0) for status, count in stats["by_status"].items()
    }
    assert {s for s, count in after_kill.items() if count} <= {"200", "404"}, counters


@pytest.mark.parametrize("seed", SEEDS)
def test_a_local_apply_killed_at_a_random_point_is_finished_by_the_same_command(
    seed: int, tmp_path: Path
) -> None:
    """test_apply.py kills a local apply at its first progress line, with names, tags
    and blocklists only; this one kills it at a random point, with profile fields and
    metadata too."""
    rng = random.Random(seed)
    n = USERS["local"]
    users = declared_users("local", n)
    manifest = tmp_path / "team.yaml"
    write_manifest(manifest, provider_section("local", None), users)
    total = change_count(users)
    target = rng.randint(1, int(total * 0.6))

    process = start_apply(manifest)
    try:
        made_at_kill = wait_for_local_changes(process, manifest, target)
    finally:
        if process.poll() is None:
            kill(process)

    store = open_store(tmp_path / ".chatroster" / "local.db")
    try:
        made = len(store.all_users()) + sum(map(len, blocks_of(store).values()))
        print(
            f"\n[{tmp_path.name}] local seed {seed}: killed at {made_at_kill} of {total} "
            f"changes (target {target}), {made} made"
        )
        assert 0 < made < total, "the kill made all or none of the changes"
        rerun_converges(manifest)
        assert_as_declared("local", store, users)
    finally:
        store.close()


def wait_for_local_changes(process: subprocess.Popen[str], manifest: Path, target: int) -> int:
    """Poll the local store (read-only) until apply has committed ``target`` changes
    (users plus blocks); returns how many it had then."""
    path = manifest.parent / ".chatroster" / "local.db"
    deadline = time.monotonic() + KILL_TIMEOUT
    db: sqlite3.Connection | None = None
    try:
        while True:
            if process.poll() is not None:
                raise ended_early(process, manifest, f"{target} changes")
            assert time.monotonic() < deadline, f"apply made fewer than {target} changes in time"
            if db is None and path.exists():
                try:
                    db = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=0.5)
                except sqlite3.Error:
                    db = None
            if db is not None:
                try:
                    made = db.execute(
                        "SELECT (SELECT COUNT(*) FROM users) + (SELECT COUNT(*) FROM blocks)"
                    ).fetchone()[0]
                except sqlite3.Error:  # the schema is not there yet
                    made = 0
                if made >= target:
                    kill(process)
                    return int(made)
            time.sleep(0.005)
    finally:
        if db is not None:
            db.close()


# --------------------------------------------- CometChat: adopted, then killed


@pytest.mark.parametrize("seed", SEEDS)
def test_a_cometchat_apply_killed_after_adopting_users_is_finished_by_the_same_command(
    seed: int, tmp_path: Path, emulator_factory: Factory
) -> None:
    """Users that exist without an owner marker, their names as declared and their tags
    and metadata never written, are adopted; the apply is killed after the adoptions and
    before most of their updates. The rerun's updates only fill empty fields."""
    root = tmp_path
    rng = random.Random(seed)
    n = 150
    users = declared_users("cometchat", n)
    seeded = Store(root / "emulator.db")
    try:
        # A few already carry the declared tags; none has metadata or a marker.
        seeded.insert_users(
            [
                User(
                    uid=u,
                    name=want["name"],
                    link=f"https://example.com/{u}",
                    tags=tuple(want["tags"]) if i % 10 == 0 else None,
                )
                for i, (u, want) in enumerate(users.items())
            ]
        )
    finally:
        seeded.close()
    emulator = emulator_factory(db=root / "emulator.db")
    manifest = root / "team.yaml"
    write_manifest(manifest, provider_section("cometchat", emulator), users)

    plan = chatroster("plan", str(manifest), "--format", "json", cwd=root)
    assert plan.returncode == 0, shown(plan)
    summary = json.loads(plan.stdout)["summary"]
    assert summary.get("adopt_user") == n and summary.get("update_user") == n, summary

    # Adoption writes the marker (one PUT a user), then the updates (one PUT a user):
    # killed once every user is adopted and at most a third of the updates are made.
    put = "PUT /v3/users/{uid}"
    target = n + rng.randint(0, n // 3)
    process = start_apply(manifest)
    kill_after_writes(process, manifest, emulator, "cometchat", target, labels=[put])
    store = open_store(emulator.db_path)
    try:
        owned = sum(1 for user in store.all_users().values() if owner_of("cometchat", user) == OWNER)
        filled = sum(
            1
            for user in store.all_users().values()
            if user.metadata and set(plain(user.metadata)) - {MARKER_KEY}
        )
        print(
            f"\n[{root.name}] adoption seed {seed}: killed at {target} PUTs, {owned}/{n} "
            f"adopted, {filled}/{n} updated"
        )
        assert owned == n and filled < n, "the kill did not fall between adoption and update"

        again = rerun_converges(manifest)
        # The rerun finishes the updates of users that are now owned (nothing to adopt).
        plan_line = "\n".join(PLAN_LINE.findall(again.stdout))
        assert f"{n - filled} update_user" in plan_line and "adopt" not in plan_line, plan_line

        assert_as_declared("cometchat", store, users)
        # What the manifest does not manage is left alone.
        assert all(user.link == f"https://example.com/{u}" for u, user in store.all_users().items())
    finally:
        store.close()
    stats = emulator.stats()
    # One adopt and one update each. The rerun records the applied state
    # (chatroster.refresh) in the update of the users it updates, and with a marker
    # write of its own for the `filled` users the killed apply had updated.
    assert succeeded(stats, put) == 2 * n + filled, stats["by_endpoint"]
    assert writes(stats, "cometchat", ["POST /v3/users"]) == 0, stats["by_endpoint"]


# ------------------------------------------------ the limit still protects data


@pytest.mark.parametrize("platform", ["local", "nexconn", "cometchat"])
def test_a_rerun_that_would_overwrite_most_names_is_still_refused(
    platform: str, tmp_path: Path, emulator_factory: Factory
) -> None:
    emulator = None if platform == "local" else emulator_factory()
    users = declared_users(platform, 20)
    manifest = tmp_path / "team.yaml"
    write_manifest(manifest, provider_section(platform, emulator), users)
    first = chatroster("apply", str(manifest), "--yes", cwd=tmp_path)
    assert first.returncode == 0, shown(first)

    renamed = {u: {**user, "name": user["name"] + " (renamed)"} for u, user in users.items()}
    write_manifest(manifest, provider_section(platform, emulator), renamed)
    refused = chatroster("apply", str(manifest), "--yes", cwd=tmp_path)
    assert refused.returncode == 3, shown(refused)
    limit = Policy().max_update
    assert (
        f"20 of 20 users (100%) would be updated, over the policy.max_update limit of {limit}"
    ) in refused.stdout + refused.stderr, shown(refused)

    store = open_store(emulator.db_path if emulator else tmp_path / ".chatroster" / "local.db")
    try:
        assert sorted(str(u.name) for u in store.all_users().values()) == sorted(
            user["name"] for user in users.values()
        ), "a refused apply wrote something"
    finally:
        store.close()
    forced = chatroster("apply", str(manifest), "--yes", "--force", cwd=tmp_path)
    assert forced.returncode == 0, shown(forced)
