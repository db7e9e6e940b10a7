"""Run `chatroster emulator` as a real process on a free loopback port, for tests.

The emulator is started with ``python -m chatroster.emulator --port 0`` and is ready
once it prints ``chatroster emulator listening on http://127.0.0.1:PORT``. Fixtures
(re-exported by ``conftest.py``):

- ``emulator``: a fresh emulator with default settings and its own store;
- ``emulator_factory``: ``emulator_factory("--nexconn-rate", "5", db=path)`` starts one
  with extra command-line options (optionally on a given store file).

Every process started is stopped (SIGTERM, then SIGKILL) when the test ends. Use
`running_emulator` directly for wider scopes (a module-scoped fixture, a benchmark).
"""

from __future__ import annotations

import itertools
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
LISTENING = re.compile(r"^chatroster emulator listening on (http://\S+)$")
STARTUP_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0


@dataclass
class EmulatorProcess:
    """A running emulator: where it listens, which store it serves, what it printed."""

    base_url: str
    db_path: Path
    process: subprocess.Popen[str]
    output: list[str] = field(default_factory=list)
    startup_seconds: float = 0.0

    def stats(self) -> dict[str, Any]:
        return httpx.get(f"{self.base_url}/_emulator/stats").json()  # type: ignore[no-any-return]

    def reset(self) -> None:
        httpx.post(f"{self.base_url}/_emulator/reset").raise_for_status()

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Ask the process to stop with ``sig``; returns its exit status."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    @property
    def text(self) -> str:
        """Everything printed so far (stdout and stderr)."""
        return "\n".join(self.output)


def emulator_command(db_path: Path, *args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "chatroster.emulator",
        "--db",
        str(db_path),
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        *args,
    ]


def environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The process environment for an emulator, with the source tree importable."""
    env = {**os.environ, **(extra or {})}
    # The source tree first, so that the process runs the code under test.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH")]))
    return env


def _pump(stream: Any, lines: list[str], ready: queue.Queue[str | None]) -> None:
    """Collect the output (so the pipe never fills) and report the listening line."""
    for raw in stream:
        line = raw.rstrip("\n")
        lines.append(line)
        match = LISTENING.match(line)
        if match:
            ready.put(match.group(1))
    ready.put(None)
    stream.close()


@contextmanager
def running_emulator(
    db_path: Path, *args: str, env: dict[str, str] | None = None
) -> Iterator[EmulatorProcess]:
    """Start an emulator process, wait until it listens, and stop it afterwards."""
    started = time.perf_counter()
    process = subprocess.Popen(
        emulator_command(db_path, *args),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=environment(env),
    )
    lines: list[str] = []
    ready: queue.Queue[str | None] = queue.Queue()
    reader = threading.Thread(target=_pump, args=(process.stdout, lines, ready), daemon=True)
    reader.start()
    emulator = EmulatorProcess("", db_path, process, lines)
    try:
        try:
            base_url = ready.get(timeout=STARTUP_TIMEOUT)
        except queue.Empty:
            base_url = None
        if base_url is None:
            emulator.stop(signal.SIGKILL)
            reader.join(STOP_TIMEOUT)
            raise RuntimeError("the emulator did not start:\n" + emulator.text)
        emulator.base_url = base_url
        emulator.startup_seconds = time.perf_counter() - started
        yield emulator
    finally:
        emulator.stop()
        reader.join(STOP_TIMEOUT)


@pytest.fixture
def emulator_factory(tmp_path: Path) -> Iterator[Callable[..., EmulatorProcess]]:
    """Starts emulators with extra options; all are stopped when the test ends."""
    numbers = itertools.count()
    with ExitStack() as stack:

        def start(*args: str, db: Path | None = None, env: dict[str, str] | None = None) -> EmulatorProcess:
            db_path = db or tmp_path / f"emulator-{next(numbers)}.db"
            return stack.enter_context(running_emulator(db_path, *args, env=env))

        yield start


@pytest.fixture
def emulator(emulator_factory: Callable[..., EmulatorProcess]) -> EmulatorProcess:
    """A fresh emulator process with default settings and an empty store."""
    return emulator_factory()
