"""One CLI run in a fresh process, timed, with that process's own peak memory.

Shared by the benchmarks: a fresh process per step means the peak memory printed is
the step's own, not the largest of everything run before it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

_STEP = r"""
import json, resource, sys, time
from chatroster.cli import main
start = time.perf_counter()
code = 0
try:
    main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
seconds = time.perf_counter() - start
# VmHWM is this process's own high-water mark. ru_maxrss is not: on Linux it survives
# exec, so a step reported the size of the benchmark that started it (the generated
# manifest, 800+ MB for 100k users) whenever that was larger than its own.
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
try:
    with open("/proc/self/status") as status:
        peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024
except (OSError, StopIteration):
    pass
print(json.dumps({"code": code, "seconds": seconds, "peak_mb": peak}), file=sys.stderr)
"""


def step(*args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``chatroster ARGS``; returns code, seconds and peak_mb, or exits on failure."""
    env = {
        **os.environ,
        **(env or {}),
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        [sys.executable, "-c", _STEP, *args], capture_output=True, text=True, env=env, check=False
    )
    result: dict[str, Any] = json.loads(done.stderr.strip().splitlines()[-1])
    if result["code"] not in (0, None):
        raise SystemExit(f"{args[0]} failed: {done.stderr[-2000:]}")
    return result
