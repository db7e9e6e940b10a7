"""Benchmark of the core on the local platform: validate, plan, apply and export.

For 1k, 10k and 100k users it writes a manifest (profiles, tags, metadata, a
blocklist on every tenth user, a ban on every hundredth), then times, each in a
fresh process so that peak memory is that step's own:
  validate            chatroster validate
  apply (all new)     chatroster apply --yes on an empty store
  plan (no changes)   chatroster plan right after the apply
  export              chatroster export
Run:  python bench/core.py [--sizes 1000,10000,100000]

With ``--split N`` the manifest is a directory of N files, the users shared out
evenly (the first file also holds the settings, the roles and the bans): how a
manifest of a million users is written, each file under the 64 MiB limit.
  python bench/core.py --sizes 1000000 --split 100 --steps validate,apply,plan
``--steps`` runs only some steps (export of a million users takes minutes); plan
always follows an apply when both are run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Iterator
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


#: libyaml's emitter, where PyYAML has it: a million users in a minute, not ten.
DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

STEPS = ("validate", "apply", "plan", "export")


def write(data: dict, directory: Path, split: int) -> Path:
    """The manifest as one file (``split`` 1) or a directory of ``split`` files."""
    if split == 1:
        path = directory / "users.yaml"
        path.write_text(yaml.dump(data, Dumper=DUMPER, sort_keys=False))
        return path
    folder = directory / "manifest"
    folder.mkdir()
    uids = list(data["users"])
    size = -(-len(uids) // split)
    for index, start in enumerate(range(0, len(uids), size)):
        users = {uid: data["users"][uid] for uid in uids[start : start + size]}
        part = {**data, "users": users} if index == 0 else {"users": users}
        (folder / f"users-{index:03}.yaml").write_text(yaml.dump(part, Dumper=DUMPER, sort_keys=False))
    return folder


def run(n: int, split: int, steps: tuple[str, ...]) -> Iterator[tuple[str, dict]]:
    """Each step's name and figures as soon as it is done (a million users take minutes)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = str(write(manifest(n), Path(tmp), split))
        commands = {
            "validate": ("validate", ("validate", path)),
            "apply": ("apply (all new)", ("apply", path, "--yes")),
            "plan": (
                "plan (no changes)" if "apply" in steps else "plan (empty store)",
                ("plan", path) if "apply" not in steps else ("plan", path, "--detailed-exitcode"),
            ),
            "export": ("export", ("export", path, "--out", str(Path(tmp) / "out.yaml"))),
        }
        for name in STEPS:
            if name in steps:
                yield commands[name][0], step(*commands[name][1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--split", type=int, default=1, help="write the manifest as this many files")
    parser.add_argument("--steps", default=",".join(STEPS), help="of " + ",".join(STEPS))
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    steps = tuple(args.steps.split(","))
    if unknown := set(steps) - set(STEPS):
        parser.error(f"unknown steps: {', '.join(sorted(unknown))}")
    print(f"{'users':>7}  {'files':>5}  {'step':<18} {'seconds':>8} {'peak MB':>8}")
    for n in sizes:
        started = time.perf_counter()
        for name, result in run(n, args.split, steps):
            print(f"{n:>7}  {args.split:>5}  {name:<18} {result['seconds']:>8.2f} {result['peak_mb']:>8.0f}")
            sys.stdout.flush()
        sys.stdout.flush()
        print(f"{'':>7}  {'':>5}  {'(whole run)':<18} {time.perf_counter() - started:>8.2f}")


if __name__ == "__main__":
    main()
