"""`ApplyLock`: one apply at a time on a store."""

from __future__ import annotations

import fcntl
import json
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from .errors import StoreError, StoreLockedError


class ApplyLock:
    """One apply at a time on a store: an exclusive `flock` on ``<store>.lock``.

    The flock is what counts; the file's text (pid and time) is only for the message a
    second apply shows. The OS drops the flock when its process dies, so a file left by
    a killed apply never blocks. The file is never deleted: a waiter may have it open
    already, and a lock taken on a deleted file would let two applies in.

    Only the local provider opened for apply takes it; plan, drift and export never
    take or wait for it. The emulator does not take it either: it serves a store for
    hours, which would shut out every apply meanwhile, and its writes and an apply's
    interleave safely, each in its own SQLite transaction (the apply then converges on
    what it finds, as after any concurrent change on a vendor's platform).
    """

    def __init__(self, path: Path, descriptor: int) -> None:
        self.path = path
        self._descriptor: int | None = descriptor

    @classmethod
    def take(cls, store: Path, timeout: timedelta, *, poll: float = 0.1) -> ApplyLock:
        """Lock ``store`` for this process, waiting up to ``timeout`` for another apply
        to finish; `StoreLockedError` names the holder when it does not."""
        path = store.with_name(store.name + ".lock")
        descriptor = _open_lock_file(path)
        try:
            _wait_for_flock(descriptor, store, timeout, poll)
            _write_holder(descriptor)
        except BaseException:
            os.close(descriptor)
            raise
        return cls(path, descriptor)

    def release(self) -> None:
        """Let the next apply in (idempotent)."""
        if self._descriptor is None:
            return
        descriptor, self._descriptor = self._descriptor, None
        try:
            os.ftruncate(descriptor, 0)  # no holder to describe any more
        finally:
            os.close(descriptor)  # drops the flock


def _open_lock_file(path: Path) -> int:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise StoreError(f"cannot create the lock file {path}: {exc.strerror or exc}") from None


def _wait_for_flock(descriptor: int, store: Path, timeout: timedelta, poll: float) -> None:
    deadline = time.monotonic() + timeout.total_seconds()
    while True:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            left = deadline - time.monotonic()
            if left <= 0:
                raise StoreLockedError(_locked_message(store, _holder(descriptor), timeout)) from None
            time.sleep(min(poll, left))
        except OSError as exc:
            raise StoreError(f"cannot lock {store} for apply: {exc.strerror or exc}") from None


def _write_holder(descriptor: int) -> None:
    since = datetime.now(UTC).isoformat(timespec="seconds")
    text = json.dumps({"pid": os.getpid(), "since": since}) + "\n"
    os.ftruncate(descriptor, 0)
    os.pwrite(descriptor, text.encode(), 0)


def _holder(descriptor: int) -> tuple[str, str]:
    """The holder's pid and since when, as its lock file says ("unknown" if it does
    not yet: the holder writes them just after it takes the lock)."""
    try:
        found = json.loads(os.pread(descriptor, 4096, 0))
        return str(found["pid"]), str(found["since"])
    except (OSError, ValueError, TypeError, KeyError):
        return "unknown", "an unknown time"


def _locked_message(store: Path, holder: tuple[str, str], waited: timedelta) -> str:
    pid, since = holder
    if not waited:
        return (
            f"another apply holds {store} since {since} (pid {pid}); wait for it to "
            "finish or re-run with --lock-timeout 5m"
        )
    return (
        f"another apply has held {store} since {since} (pid {pid}), longer than the "
        f"{_duration(waited)} waited; wait for it to finish or re-run with a longer "
        "--lock-timeout"
    )


def _duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{value.total_seconds():g}s"
