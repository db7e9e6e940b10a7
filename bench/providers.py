"""Benchmark of the HTTP providers against `chatroster emulator`: calls, time, 429s, memory.

For CometChat and for Nexconn, at 1k and 10k users, it starts the emulator as a real process on
loopback with its rate limit at the vendor's default and runs the real CLI, each step
in a fresh process so that peak memory is that step's own:
  apply (all new)     chatroster apply --yes on an empty app
  plan (no changes)   chatroster plan right after the apply
and prints per step: API calls (from the emulator's counters), the call count the
documented formula gives, seconds, the floor that the rate limit allows, 429s seen and
peak memory.

The manifest: every user with a name, role, tags and metadata; every 10th user blocks
one other; every 20th is deactivated.

Formulas (docs/providers.md):
  CometChat no-change plan = 1 + ceil(A/1000) + ceil(D/1000) + B
    A active users, D deactivated users (each listing costs at least one call),
    B active users whose blocklist the manifest manages (one call each up to 1000 blocks).
  CometChat apply (all new) = N creates (core) + ceil(D/25) deactivations + B block calls
    + the plan's read; the floor is creates / core limit and the rest / standard limit.

The emulator takes one per-minute limit for each class; the vendor's defaults differ
(core 10,000, standard 20,000), so the emulator is set to the stricter 10,000 and the
manifest tells the client the same for both classes.

Nexconn (its own manifest below: profiles, tags, blocks, deactivations and bans) runs
against the emulator's limit at the vendor's default, 100 requests per second per
endpoint (issue 200/s, tag batch set 10/s), with the manifest's `rate: 100`:
  Nexconn no-change plan = (S//50 + 1) + (N - S) + ceil(N/50) + (N//100 + 1)
    + (B//1000 + 1) + K
    N declared users (all with a hosted profile), S of them soft-deleted, B banned,
    K active users whose blocklist the manifest manages.
  Nexconn apply (all new): the empty read (N user/get) plus, per endpoint, the calls
    `nexconn_apply_calls` lists. Its floor adds up, stage by stage, the slowest
    endpoint's calls / the vendor's limit for it (endpoints of one stage run together).

Against the loop a team would write instead (`--vs-loop`, Nexconn): the vendor's SDK,
user after user (bench/sdk_loop.py), side by side with chatroster on the same manifest
(name, avatar, profile, tags, a blocklist on every tenth user), each on its own emulator
at the vendor's rate limits with `--latency 40` (a real network's round trip). Rows:
initial sync, no-change sync, and a sync after one user's name changed (all with the
default `--refresh full`), then a no-change sync and a sync after another user's name
changed with `--refresh changed` (only the bulk lists and the changed user are read);
each with
calls, seconds, the floor (the busiest endpoint's calls / its limit: what running every
endpoint at once would allow) and the loop's seconds over chatroster's. The loop visits
every user on every sync, so it is timed over its first `--loop-sample` users and
scaled to all (marked "~").

Run:  PYTHONPATH=src python bench/providers.py [--sizes 1000,10000] [--vendors cometchat,nexconn]
      PYTHONPATH=src python bench/providers.py --vs-loop [--sizes 1000,10000] [--loop-sample 200]
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests"), str(ROOT / "bench")]

import cli_step
from emulator_process import EmulatorProcess, running_emulator

API_KEY = "emulator-api-key"
VENDOR_LIMIT = 10_000
"""Requests per minute per class the emulator enforces (the vendor's core default)."""
SAFETY = 0.9
"""The share of a limit the provider uses (providers/cometchat/client.py: RATE_SAFETY)."""


def manifest(n: int, base_url: str) -> dict[str, Any]:
    users: dict[str, Any] = {}
    for i in range(n):
        user: dict[str, Any] = {
            "name": f"User {i}",
            "role": "default",
            "tags": ["staff", f"team{i % 20}"],
            "metadata": {"team": f"t{i % 50}", "level": i % 7},
        }
        if i % 10 == 0:
            user["blocklist"] = [f"u{(i + 1) % n}"]
        if i % 20 == 5:
            user["active"] = False
        users[f"u{i}"] = user
    provider = {
        "type": "cometchat",
        "app_id": "emulator-app",
        "url": base_url,
        "api_key": "${COMETCHAT_API_KEY}",
        "rate_core": VENDOR_LIMIT,
        "rate_standard": VENDOR_LIMIT,
    }
    return {
        "version": 1,
        "provider": provider,
        "owner": "bench",
        "policy": {"max_update": "100%", "max_deactivate": "100%"},
        "users": users,
    }


def counts(n: int) -> dict[str, int]:
    deactivated = len([i for i in range(n) if i % 20 == 5])
    blockers = len([i for i in range(n) if i % 10 == 0 and i % 20 != 5])
    return {"active": n - deactivated, "deactivated": deactivated, "blockers": blockers}


def plan_formula(n: int) -> int:
    c = counts(n)
    listings = max(1, math.ceil(c["active"] / 1000)) + max(1, math.ceil(c["deactivated"] / 1000))
    return 1 + listings + c["blockers"]  # 1: the roles


def apply_formula(n: int) -> tuple[int, float]:
    """Calls of an apply on an empty app, and the floor at the vendor's limits: the
    read, then every lane at once (creates in the core class; deactivations, blocks
    and the blockers' digests, written as each blocker's block is in, in the standard)."""
    c = counts(n)
    empty_read = 3  # two listings, each one empty page, and the roles
    core = n
    digests = c["blockers"]  # PUT /users/{uid}: users with more than one change
    standard = math.ceil(c["deactivated"] / 25) + c["blockers"] + digests
    per_second = VENDOR_LIMIT / 60
    floor = (empty_read + max(core, standard)) / per_second
    return core + empty_read + standard, floor


def changed_formula(n: int) -> int:
    """A no-change plan with --refresh changed: the listings and the roles alone."""
    c = counts(n)
    return 1 + max(1, math.ceil(c["active"] / 1000)) + max(1, math.ceil(c["deactivated"] / 1000))


def step(*args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    return cli_step.step(*args, env={"COMETCHAT_API_KEY": API_KEY, **(env or {})})


def measured(emulator: EmulatorProcess, result: dict[str, Any]) -> dict[str, Any]:
    stats = emulator.stats()
    emulator.reset()
    return {
        **result,
        "calls": stats["total"],
        "throttled": stats["by_status"].get("429", 0),
        "by_endpoint": {k: sum(v.values()) for k, v in stats["by_endpoint"].items()},
    }


EDITED = "u10"
"""The user whose declaration the "one user edited" plan changes (it blocks another)."""


def run(n: int) -> list[tuple[str, dict[str, Any], int, float | None]]:
    with (
        tempfile.TemporaryDirectory() as tmp,
        running_emulator(Path(tmp) / "emulator.db", "--cometchat-rate", str(VENDOR_LIMIT)) as emulator,
    ):
        path = Path(tmp) / "users.yaml"
        document = manifest(n, emulator.base_url)
        path.write_text(yaml.safe_dump(document, sort_keys=False))
        emulator.reset()
        applied = measured(emulator, step("apply", str(path), "--yes"))
        planned = measured(emulator, step("plan", str(path), "--detailed-exitcode"))
        changed, edited = changed_plans(emulator, path, document, step)
    for name, result in (("changed", changed), ("edited", edited)):
        blocklists = result["by_endpoint"].get("GET /v3/users/{uid}/blockedusers", 0)
        print(f"  {name}: {blocklists} blocklist read(s); calls by endpoint {result['by_endpoint']}")
    apply_calls, floor = apply_formula(n)
    return [
        ("apply (all new)", applied, apply_calls, floor),
        ("plan (no changes)", planned, plan_formula(n), None),
        ("plan, changed", changed, changed_formula(n), None),
        ("plan 1 edit, changed", edited, changed_formula(n) + 1, None),
    ]


def changed_plans(
    emulator: EmulatorProcess, path: Path, document: dict[str, Any], run_step: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A no-change plan with --refresh changed, then one after editing `EDITED`."""
    changed = measured(emulator, run_step("plan", str(path), "--detailed-exitcode", "--refresh", "changed"))
    document["users"][EDITED]["name"] += " (renamed)"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    edited = measured(emulator, run_step("plan", str(path), "--refresh", "changed"))
    return changed, edited


# ------------------------------------------------------------------------- Nexconn

NEXCONN_LIMIT = 100.0
"""Requests per second per endpoint and App Key: the vendor's default (and the emulator's)."""
NEXCONN_KEY, NEXCONN_SECRET = "emulator-app-key", "emulator-app-secret"
#: Endpoints whose vendor limit differs from the default, as calls per second.
NEXCONN_LIMITS = {
    "/v4/auth/access-token/issue": 2 * NEXCONN_LIMIT,
    "/v4/user/tag/batch/set": NEXCONN_LIMIT / 10,
    "/v4/user/soft-delete": NEXCONN_LIMIT / 100,  # 100 user ids/s, 100 ids a call
}
#: What runs one after the other; endpoints within a stage run at the same time.
NEXCONN_READ = [
    ["/v4/user/soft-deleted/list", "/v4/user/ban/list", "/v4/user/profile/list"],
    ["/v4/user/get"],
    ["/v4/user/tag/batch/get", "/v4/user/blocklist/get"],
]
NEXCONN_WRITE = [
    ["/v4/auth/access-token/issue", "/v4/user/profile/set"],
    ["/v4/user/tag/batch/set"],
    ["/v4/user/soft-delete"],
    ["/v4/user/ban"],
    ["/v4/user/blocklist/add"],
]
APPLY_BATCH = 1000
"""Changes the applier hands the Nexconn provider at once (NexconnProvider.batch_size)."""


def nexconn_manifest(n: int, base_url: str) -> dict[str, Any]:
    users: dict[str, Any] = {}
    for i in range(n):
        user: dict[str, Any] = {
            "name": f"User {i}",
            "avatar": f"https://example.com/a/{i}.png",
            "tags": ["staff", f"team{i % 20}"],
            "profile": {"email": f"user{i}@example.com", "level": i % 100},
        }
        if i % 10 == 0:
            user["blocklist"] = [f"u{(i + 1) % n}"]
        if i % 20 == 5:
            user["active"] = False
        users[f"u{i}"] = user
    provider = {
        "type": "nexconn",
        "url": base_url,
        "rate": NEXCONN_LIMIT,
        "app_key": "${NEXCONN_APP_KEY}",
        "app_secret": "${NEXCONN_APP_SECRET}",
    }
    bans = {f"u{i}": {"until": "forever"} for i in range(50, n, 100)}
    return {
        "version": 1,
        "provider": provider,
        "owner": "bench",
        "policy": {"max_update": "100%", "max_deactivate": "100%"},
        "users": users,
        "bans": bans,
    }


def nexconn_counts(n: int) -> dict[str, int]:
    return {
        "deactivated": len([i for i in range(n) if i % 20 == 5]),
        "blockers": len([i for i in range(n) if i % 10 == 0]),
        "bans": len(range(50, n, 100)),
    }


def windowed(pages: int, concurrency: int = 8) -> int:
    """Calls for a list of unknown length whose last (short) page is ``pages``: read in
    windows of 1, 2, 4 ... pages up to ``concurrency`` (http/paging.py)."""
    end, growing = 1, 1
    while end < pages:
        end += growing
        growing = min(concurrency, growing * 2)
    return end


def nexconn_lists(n: int) -> dict[str, int]:
    """The bulk lists of a plan after the apply: soft-deleted users (50 a page), hosted
    profiles (100 a page; soft-deleted users have none) and bans (1,000 a page)."""
    c = nexconn_counts(n)
    return {
        "/v4/user/soft-deleted/list": windowed(c["deactivated"] // 50 + 1),
        "/v4/user/profile/list": windowed((n - c["deactivated"]) // 100 + 1),
        "/v4/user/ban/list": windowed(c["bans"] // 1000 + 1),
    }


def nexconn_plan_calls(n: int) -> dict[str, int]:
    """The documented read formula (docs/providers.md) for this manifest, per endpoint."""
    c = nexconn_counts(n)
    return {
        **nexconn_lists(n),
        "/v4/user/get": n - c["deactivated"],
        "/v4/user/tag/batch/get": math.ceil(n / 50),
        "/v4/user/blocklist/get": c["blockers"],
    }


def create_waves(tags: list[tuple[str, ...]], first: int = 50, most: int = 1000) -> int:
    """Tag calls for one batch of creates: users with the same tags in waves that
    double from ``first`` (providers/nexconn/provider.py: `_waves`)."""
    groups: dict[tuple[str, ...], int] = {}
    for key in tags:
        groups[key] = groups.get(key, 0) + 1
    calls, size = 0, first
    for members in groups.values():
        while members > 0:
            calls, members, size = calls + 1, members - size, min(2 * size, most)
    return calls


def nexconn_apply_calls(n: int) -> tuple[dict[str, int], dict[str, int]]:
    """Calls of an apply on an empty app: the read finds nobody, then the writes; and
    the digests recorded apart (users with more than one change: the blockers)."""
    c = nexconn_counts(n)
    batches = [range(start, min(n, start + APPLY_BATCH)) for start in range(0, n, APPLY_BATCH)]
    calls = {
        "/v4/user/soft-deleted/list": 1,
        "/v4/user/ban/list": 1,
        "/v4/user/profile/list": 1,
        "/v4/user/get": n,
        "/v4/auth/access-token/issue": n,
        "/v4/user/profile/set": n,
        "/v4/user/tag/batch/set": sum(create_waves([("staff", f"team{i % 20}") for i in b]) for b in batches),
        "/v4/user/soft-delete": sum(
            math.ceil(len([i for i in batch if i % 20 == 5]) / 100) for batch in batches
        ),
        "/v4/user/ban": math.ceil(c["bans"] / 20),
        "/v4/user/blocklist/add": c["blockers"],
    }
    digests = {
        "/v4/user/profile/batch/get": math.ceil(c["blockers"] / 20),
        "/v4/user/profile/set": c["blockers"],
    }
    return calls, digests


def nexconn_floor(calls: dict[str, int], stages: list[list[str]]) -> float:
    """Seconds the vendor's limits allow at best: per stage, its slowest endpoint."""
    return sum(
        max(calls.get(path, 0) / NEXCONN_LIMITS.get(path, NEXCONN_LIMIT) for path in stage)
        for stage in stages
    )


def nexconn_apply_floor(calls: dict[str, int], digests: dict[str, int]) -> float:
    """The read's stages one after the other, then every write endpoint at once (each
    action on its own lane), the digests of the blockers beside them; never less than
    the busiest endpoint's calls over its limit."""
    reads = nexconn_floor(calls, NEXCONN_READ)
    writes = {path: calls.get(path, 0) + digests.get(path, 0) for stage in NEXCONN_WRITE for path in stage}
    writes["/v4/user/profile/batch/get"] = digests["/v4/user/profile/batch/get"]
    return reads + max(calls / NEXCONN_LIMITS.get(path, NEXCONN_LIMIT) for path, calls in writes.items())


def nexconn_step(*args: str) -> dict[str, Any]:
    env = {"NEXCONN_APP_KEY": NEXCONN_KEY, "NEXCONN_APP_SECRET": NEXCONN_SECRET}
    return step(*args, env=env)


def run_nexconn(n: int) -> list[tuple[str, dict[str, Any], int, float | None]]:
    with (
        tempfile.TemporaryDirectory() as tmp,
        running_emulator(Path(tmp) / "emulator.db", "--nexconn-rate", str(NEXCONN_LIMIT)) as emulator,
    ):
        path = Path(tmp) / "users.yaml"
        document = nexconn_manifest(n, emulator.base_url)
        path.write_text(yaml.safe_dump(document, sort_keys=False))
        emulator.reset()
        applied = measured(emulator, nexconn_step("apply", str(path), "--yes"))
        planned = measured(emulator, nexconn_step("plan", str(path), "--detailed-exitcode"))
        changed, edited = changed_plans(emulator, path, document, nexconn_step)
    plan_calls = nexconn_plan_calls(n)
    apply_calls, digests = nexconn_apply_calls(n)
    applied_calls = {
        path: apply_calls.get(path, 0) + digests.get(path, 0) for path in {*apply_calls, *digests}
    }
    # The declared soft-deleted users are never trusted: their tags are read (50 a call).
    deactivated = nexconn_counts(n)["deactivated"]
    lists = {**nexconn_lists(n), "/v4/user/tag/batch/get": math.ceil(deactivated / 50)}
    # The edited user's own reads: user/get, its tags and (a blocker) its blocklist.
    one = {
        **lists,
        "/v4/user/get": 1,
        "/v4/user/tag/batch/get": math.ceil((deactivated + 1) / 50),
        "/v4/user/blocklist/get": 1,
    }
    checks = (("plan", planned, plan_calls), ("apply", applied, applied_calls), ("changed", changed, lists))
    for name, result, expected in (*checks, ("edited", edited, one)):
        got = {path.split(" ", 1)[1]: calls for path, calls in result["by_endpoint"].items()}
        if got != expected:
            print(f"  {name}: calls by endpoint {got} differ from the formula's {expected}")
    return [
        ("apply (all new)", applied, sum(applied_calls.values()), nexconn_apply_floor(apply_calls, digests)),
        ("plan (no changes)", planned, sum(plan_calls.values()), nexconn_floor(plan_calls, NEXCONN_READ)),
        ("plan, changed", changed, sum(lists.values()), nexconn_floor(lists, NEXCONN_READ)),
        ("plan 1 edit, changed", edited, sum(one.values()), nexconn_floor(one, NEXCONN_READ)),
    ]


# ------------------------------------------------------------ against the SDK loop

LATENCY_MS = 40
"""Added by the emulator to every answer: about a round trip to a vendor's region."""


def loop_manifest(n: int, base_url: str) -> dict[str, Any]:
    """What both sides sync: blocks point backwards, so that the loop, which goes user
    by user, never blocks a user it has not registered yet."""
    users: dict[str, Any] = {}
    for i in range(n):
        user: dict[str, Any] = {
            "name": f"User {i}",
            "avatar": f"https://example.com/a/{i}.png",
            "tags": ["staff", f"team{i % 20}"],
            "profile": {"email": f"user{i}@example.com", "level": i % 100},
        }
        if i % 10 == 0 and i > 0:
            user["blocklist"] = [f"u{i - 1}"]
        users[f"u{i}"] = user
    manifest = {key: value for key, value in nexconn_manifest(0, base_url).items() if key != "bans"}
    return {**manifest, "users": users, "policy": {"max_update": "100%"}}


def floor_of(by_endpoint: dict[str, int]) -> float:
    """The busiest endpoint's calls over its limit: the time if every endpoint ran at
    once at the vendor's rate."""
    paths = {label.split(" ", 1)[1]: calls for label, calls in by_endpoint.items()}
    return max((calls / NEXCONN_LIMITS.get(path, NEXCONN_LIMIT) for path, calls in paths.items()), default=0)


def timed_loop(emulator: EmulatorProcess, users: dict[str, Any], scale: float) -> dict[str, Any]:
    from sdk_loop import SdkLoop

    loop = SdkLoop(emulator.base_url, NEXCONN_KEY, NEXCONN_SECRET)
    start = time.perf_counter()
    loop.sync(users)
    seconds = time.perf_counter() - start
    stats = emulator.stats()
    emulator.reset()
    return {"seconds": seconds * scale, "calls": round(stats["total"] * scale)}


def run_vs_loop(n: int, sample: int) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    emulator_args = ("--nexconn-rate", str(NEXCONN_LIMIT), "--latency", str(LATENCY_MS))
    sample = min(sample, n)
    scale = n / sample
    rows = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        running_emulator(Path(tmp) / "ours.db", *emulator_args) as ours,
        running_emulator(Path(tmp) / "loop.db", *emulator_args) as theirs,
    ):
        path = Path(tmp) / "users.yaml"
        manifest = loop_manifest(n, ours.base_url)
        path.write_text(yaml.safe_dump(manifest, sort_keys=False))
        sampled = dict(list(manifest["users"].items())[:sample])
        ours.reset()
        theirs.reset()
        steps = [
            ("initial sync", None, "full"),
            ("no-change sync", None, "full"),
            ("one user changed", "u0", "full"),
            ("no-change, changed", None, "changed"),
            ("one changed, changed", "u1", "changed"),
        ]
        for name, changed, refresh in steps:
            if changed is not None:
                manifest["users"][changed]["name"] += " (renamed)"
                path.write_text(yaml.safe_dump(manifest, sort_keys=False))
            result = measured(ours, nexconn_step("apply", str(path), "--yes", "--refresh", refresh))
            if result["code"] != 0:
                raise SystemExit(f"chatroster apply failed ({name}): exit {result['code']}")
            rows.append((name, result, timed_loop(theirs, sampled, scale)))
    return rows


def table_vs_loop(sizes: list[int], sample: int) -> None:
    print(
        f"Nexconn, chatroster against the SDK loop (limit {NEXCONN_LIMIT:g}/s per endpoint, "
        f"latency {LATENCY_MS} ms; loop timed over {sample} users and scaled: ~)"
    )
    print(
        f"{'users':>7}  {'step':<18} {'calls':>7} {'seconds':>8} {'floor s':>8} {'429s':>5} "
        f"{'loop calls':>10} {'loop s':>9} {'ratio':>7}"
    )
    for n in sizes:
        for name, ours, loop in run_vs_loop(n, sample):
            mark = "~" if sample < n else " "
            print(
                f"{n:>7}  {name:<18} {ours['calls']:>7} {ours['seconds']:>8.2f} "
                f"{floor_of(ours['by_endpoint']):>8.1f} {ours['throttled']:>5} "
                f"{mark}{loop['calls']:>9} {mark}{loop['seconds']:>8.1f} "
                f"{loop['seconds'] / ours['seconds']:>6.1f}x"
            )
            sys.stdout.flush()


# ---------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--vendors", default="cometchat,nexconn")
    parser.add_argument("--vs-loop", action="store_true", help="Nexconn against the SDK loop")
    parser.add_argument("--loop-sample", type=int, default=200, help="users the loop is timed over")
    arguments = parser.parse_args()
    sizes = [int(size) for size in arguments.sizes.split(",")]
    if arguments.vs_loop:
        table_vs_loop(sizes, arguments.loop_sample)
        return
    vendors = arguments.vendors.split(",")
    if "cometchat" in vendors:
        print(
            "CometChat through chatroster emulator "
            f"(limit {VENDOR_LIMIT}/min per class, client at {SAFETY:.0%})"
        )
        table(sizes, run)
    if "nexconn" in vendors:
        print(f"Nexconn through chatroster emulator (limit {NEXCONN_LIMIT:g}/s per endpoint, client at 90%)")
        table(sizes, run_nexconn)


def table(sizes: list[int], runner: Any) -> None:
    print(
        f"{'users':>7}  {'step':<18} {'calls':>7} {'formula':>8} {'seconds':>8} "
        f"{'floor s':>8} {'429s':>5} {'peak MB':>8}"
    )
    for n in sizes:
        for name, result, formula, floor in runner(n):
            shown_floor = f"{floor:>8.1f}" if floor is not None else f"{'':>8}"
            print(
                f"{n:>7}  {name:<18} {result['calls']:>7} {formula:>8} "
                f"{result['seconds']:>8.2f} {shown_floor} {result['throttled']:>5} "
                f"{result['peak_mb']:>8.0f}"
            )
            sys.stdout.flush()


if __name__ == "__main__":
    main()
