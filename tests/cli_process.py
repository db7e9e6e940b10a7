"""Run the real `chatroster` command as a subprocess, the way a user runs it.

Credentials the user's shell may hold for a real vendor are left out unless a test
passes them, so that a test can never reach past loopback with them; colour is off so
that assertions read plain text; and an input problem must never end in a traceback.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

VENDOR_VARIABLES = ("NEXCONN_", "COMETCHAT_")


def chatroster(
    *args: str | Path, cwd: Path, env: Mapping[str, str] | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """``chatroster ARGS`` in ``cwd``; ``env`` adds to a scrubbed copy of this one."""
    result = subprocess.run(
        [sys.executable, "-m", "chatroster", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith(VENDOR_VARIABLES)},
            "NO_COLOR": "1",
            **(env or {}),
        },
    )
    assert "Traceback" not in result.stdout + result.stderr, result.stderr[-3000:]
    return result
