"""Benchmark of the core on the local platform: validate, plan, apply and export.

For 1k, 10k and 100k users it writes a manifest (profiles, tags, metadata, a
blocklist on every tenth user, a ban on every hundredth), then times, each in a
fresh process so that peak memory is that step's own:
  validate            chatroster validate
  apply (all new)     chatroster apply --yes on an empty store
  plan (no changes)   chatroster plan right after the apply
  export              chatroster export
Run:  python bench/core.py [--sizes 1000,10000,100000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import yaml
from cli_step import step


def manifest(n: int) -> dict:
    users = {}
    for i in range(n):
        user = {
            "name": f"User {i}",
            "avatar": f"https://example.com/a/{i}.png",
            "role": "agent" if i % 3 else "admin",
            "tags": ["staff", f"team{i % 20}"],
            "metadata": {"team": f"t{i % 50}", "level": i % 7},
            "profile": {"email": f"user{i}@example.com", "level": i % 100},
        }
        if i % 10 == 0:
            user["blocklist"] = [f"u{(i + 1) % n}", f"u{(i + 2) % n}"]
        users[f"u{i}"] = user
    bans = {f"u{i}": {"until": "forever"} for i in range(0, n, 100)}
    return {
        "version": 1,
        "provider": {"type": "local"},
        "owner": "bench",
        "policy": {"max_update": "100%"},
        "users": users,
        "roles": {"agent": {"description": "Support agent"}, "admin": {"description": "Administrator"}},
        "bans": bans,
    }


def run(n: int) -> list[tuple[str, dict]]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "users.yaml"
        path.write_text(yaml.safe_dump(manifest(n), sort_keys=False))
        return [
            ("validate", step("validate", str(path))),
            ("apply (all new)", step("apply", str(path), "--yes")),
            ("plan (no changes)", step("plan", str(path), "--detailed-exitcode")),
            ("export", step("export", str(path), "--out", str(Path(tmp) / "out.yaml"))),
        ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    sizes = [int(size) for size in parser.parse_args().sizes.split(",")]
    print(f"{'users':>7}  {'step':<18} {'seconds':>8} {'peak MB':>8}")
    for n in sizes:
        started = time.perf_counter()
        for name, result in run(n):
            print(f"{n:>7}  {name:<18} {result['seconds']:>8.2f} {result['peak_mb']:>8.0f}")
        sys.stdout.flush()
        print(f"{'':>7}  {'(whole run)':<18} {time.perf_counter() - started:>8.2f}")


if __name__ == "__main__":
    main()
