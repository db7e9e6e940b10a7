"""Benchmark of the HTTP providers against `chatroster emulator`: calls, time, 429s, memory.

For CometChat, at 1k and 10k users, it starts the emulator as a real process on
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
  CometChat no-change plan = ceil(A/1000) + ceil(D/1000) + B
    A active users, D deactivated users (each listing costs at least one call),
    B active users whose blocklist the manifest manages (one call each up to 1000 blocks).
  CometChat apply (all new) = N creates (core) + ceil(D/25) deactivations + B block calls
    + the plan's read; the floor is creates / core limit and the rest / standard limit.

The emulator takes one per-minute limit for each class; the vendor's defaults differ
(core 10,000, standard 20,000), so the emulator is set to the stricter 10,000 and the
manifest tells the client the same for both classes.

Run:  PYTHONPATH=src python bench/providers.py [--sizes 1000,10000]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]

from emulator_process import EmulatorProcess, running_emulator

API_KEY = "emulator-api-key"
VENDOR_LIMIT = 10_000
"""Requests per minute per class the emulator enforces (the vendor's core default)."""
SAFETY = 0.9
"""The share of a limit the provider uses (providers/cometchat.py: RATE_SAFETY)."""

STEP = r"""
import json, resource, sys, time
from chatroster.cli import main
start = time.perf_counter()
try:
    main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"code": code, "seconds": seconds, "peak_mb": peak}), file=sys.stderr)
"""


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
        "type": "cometchat", "app_id": "emulator-app", "url": base_url,
        "api_key": "${COMETCHAT_API_KEY}",
        "rate_core": VENDOR_LIMIT, "rate_standard": VENDOR_LIMIT,
    }
    return {"version": 1, "provider": provider, "owner": "bench",
            "policy": {"max_update": "100%", "max_deactivate": "100%"}, "users": users}


def counts(n: int) -> dict[str, int]:
    deactivated = len([i for i in range(n) if i % 20 == 5])
    blockers = len([i for i in range(n) if i % 10 == 0 and i % 20 != 5])
    return {"active": n - deactivated, "deactivated": deactivated, "blockers": blockers}


def plan_formula(n: int) -> int:
    c = counts(n)
    return (max(1, math.ceil(c["active"] / 1000)) + max(1, math.ceil(c["deactivated"] / 1000))
            + c["blockers"])


def apply_formula(n: int) -> tuple[int, float]:
    """Calls of an apply on an empty app, and the least time the limits allow."""
    c = counts(n)
    empty_read = 2  # two listings, each one empty page
    core = n
    standard = empty_read + math.ceil(c["deactivated"] / 25) + c["blockers"]
    floor = max(core / (VENDOR_LIMIT * SAFETY), standard / (VENDOR_LIMIT * SAFETY)) * 60
    return core + standard, floor


def step(*args: str) -> dict[str, Any]:
    env = {**os.environ, "COMETCHAT_API_KEY": API_KEY,
           "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-c", STEP, *args], capture_output=True, text=True, env=env, check=False
    )
    result: dict[str, Any] = json.loads(done.stderr.strip().splitlines()[-1])
    if result["code"] not in (0, None):
        raise SystemExit(f"{args[0]} failed: {done.stderr[-2000:]}")
    return result


def measured(emulator: EmulatorProcess, result: dict[str, Any]) -> dict[str, Any]:
    stats = emulator.stats()
    emulator.reset()
    return {**result, "calls": stats["total"],
            "throttled": stats["by_status"].get("429", 0),
            "by_endpoint": {k: sum(v.values()) for k, v in stats["by_endpoint"].items()}}


def run(n: int) -> list[tuple[str, dict[str, Any], int, float | None]]:
    with tempfile.TemporaryDirectory() as tmp, running_emulator(
        Path(tmp) / "emulator.db", "--cometchat-rate", str(VENDOR_LIMIT)
    ) as emulator:
        path = Path(tmp) / "users.yaml"
        path.write_text(yaml.safe_dump(manifest(n, emulator.base_url), sort_keys=False))
        emulator.reset()
        applied = measured(emulator, step("apply", str(path), "--yes"))
        planned = measured(emulator, step("plan", str(path), "--detailed-exitcode"))
    apply_calls, floor = apply_formula(n)
    return [
        ("apply (all new)", applied, apply_calls, floor),
        ("plan (no changes)", planned, plan_formula(n), None),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000")
    sizes = [int(size) for size in parser.parse_args().sizes.split(",")]
    print("CometChat through chatroster emulator "
          f"(limit {VENDOR_LIMIT}/min per class, client at {SAFETY:.0%})")
    print(f"{'users':>7}  {'step':<18} {'calls':>7} {'formula':>8} {'seconds':>8} "
          f"{'floor s':>8} {'429s':>5} {'peak MB':>8}")
    for n in sizes:
        for name, result, formula, floor in run(n):
            shown_floor = f"{floor:>8.1f}" if floor is not None else f"{'':>8}"
            print(f"{n:>7}  {name:<18} {result['calls']:>7} {formula:>8} "
                  f"{result['seconds']:>8.2f} {shown_floor} {result['throttled']:>5} "
                  f"{result['peak_mb']:>8.0f}")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
