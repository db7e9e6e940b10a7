"""Fault injection chosen from a seed, so a failing run can be replayed exactly.

The n-th API request (counted from start-up or the last ``/_emulator/reset``) fails
or not as a pure function of ``(seed, n)``: the same seed and the same order of
requests give the same faults, whatever the timing.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
from collections.abc import Sequence
from typing import Literal

FaultKind = Literal["error", "throttle", "hang", "drop"]
FAULT_KINDS: tuple[FaultKind, ...] = ("error", "throttle", "hang", "drop")

Fault = Literal["500", "503", "429", "hang", "drop"]
"""What the request gets: an error status, a hang (then 503), or a dropped connection."""

DROP_EXTENSION = "chatroster.drop"
"""ASGI scope extension (set by `server.py`): a callable that closes the connection."""


def _uniform(seed: int, index: int, salt: str) -> float:
    """A number in [0, 1) determined by the arguments alone."""
    digest = hashlib.blake2b(f"{seed}:{index}:{salt}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def fault_for(seed: int, index: int, rate: float, kinds: Sequence[FaultKind]) -> Fault | None:
    """The fault of request number ``index``, or None if it is served normally."""
    if rate <= 0 or not kinds or _uniform(seed, index, "hit") >= rate:
        return None
    kind = kinds[int(_uniform(seed, index, "kind") * len(kinds))]
    if kind == "error":
        return "500" if _uniform(seed, index, "status") < 0.5 else "503"
    if kind == "throttle":
        return "429"
    return kind


class FaultPlan:
    """Numbers the requests and says which fault each one gets; thread-safe."""

    def __init__(self, rate: float, seed: int, kinds: Sequence[str] = FAULT_KINDS) -> None:
        unknown = sorted(set(kinds) - set(FAULT_KINDS))
        if unknown:
            raise ValueError(f"unknown fault kind(s): {', '.join(unknown)}")
        if not 0.0 <= rate <= 1.0:
            raise ValueError("fault rate must be between 0 and 1")
        self.rate = rate
        self.seed = seed
        self.kinds: tuple[FaultKind, ...] = tuple(k for k in FAULT_KINDS if k in kinds)
        self._lock = threading.Lock()
        self._counter = itertools.count()

    @property
    def enabled(self) -> bool:
        return self.rate > 0 and bool(self.kinds)

    def next(self) -> Fault | None:
        with self._lock:
            index = next(self._counter)
        return fault_for(self.seed, index, self.rate, self.kinds)

    def reset(self) -> None:
        with self._lock:
            self._counter = itertools.count()
