"""Rate limiters shaped like the vendors' own, thread-safe and keyed.

Nexconn allows a number of requests per second per App Key and answers 429 beyond it,
so it gets a token bucket (a burst of at most one second's worth, refilled
continuously). CometChat counts requests per app in fixed one-minute windows per rate
class and tells the client how many remain and when the window resets, so it gets a
fixed-window counter that reports exactly those values.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass

Clock = Callable[[], float]

_MAX_KEYS = 10_000
"""Keys are client-chosen (an App-Key header); idle ones are dropped past this many."""


_EPSILON = 1e-9


@dataclass(frozen=True)
class Decision:
    """The answer for one request: allowed or not, and the numbers a vendor reports."""

    allowed: bool
    limit: int
    remaining: int
    reset_epoch: int
    """Unix time (seconds) at which the full allowance is back."""
    retry_after: int
    """Whole seconds to wait before trying again (0 when allowed)."""


class TokenBucket:
    """``rate`` requests per second per key, with a burst of ``max(1, rate)``."""

    def __init__(self, rate: float, clock: Clock = time.time) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.capacity = max(1.0, rate)
        self._clock = clock
        self._buckets: dict[Hashable, tuple[float, float]] = {}  # key -> (tokens, at)
        self._lock = threading.Lock()

    def acquire(self, key: Hashable) -> Decision:
        now = self._clock()
        with self._lock:
            tokens, at = self._buckets.get(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - at) * self.rate)
            allowed = tokens >= 1.0 - _EPSILON  # refills by float steps: 10 x 0.1 < 1.0
            if allowed:
                tokens -= 1.0
            if len(self._buckets) >= _MAX_KEYS and key not in self._buckets:
                self._forget_full(now)
            self._buckets[key] = (tokens, now)
        wait = 0.0 if allowed else (1.0 - tokens) / self.rate
        full_in = (self.capacity - tokens) / self.rate
        return Decision(
            allowed=allowed,
            limit=math.ceil(self.capacity),
            remaining=int(tokens),
            reset_epoch=math.ceil(now + full_in),
            retry_after=math.ceil(wait),
        )

    def _forget_full(self, now: float) -> None:
        """Drop buckets that have refilled completely: forgetting them changes nothing."""
        for key, (tokens, at) in list(self._buckets.items()):
            if tokens + (now - at) * self.rate >= self.capacity:
                del self._buckets[key]

    def reset(self) -> None:
        with self._lock:
            self._buckets.clear()


class FixedWindow:
    """``limit`` requests per key in each aligned window of ``window`` seconds."""

    def __init__(self, limit: int, window: float = 60.0, clock: Clock = time.time) -> None:
        if limit <= 0:
            raise ValueError("limit must be positive")
        self.limit = limit
        self.window = window
        self._clock = clock
        self._counts: dict[Hashable, tuple[int, int]] = {}  # key -> (window index, count)
        self._lock = threading.Lock()

    def acquire(self, key: Hashable) -> Decision:
        now = self._clock()
        index = int(now // self.window)
        with self._lock:
            seen_index, count = self._counts.get(key, (index, 0))
            if seen_index != index:
                count = 0
            allowed = count < self.limit
            if allowed:
                count += 1
            if len(self._counts) >= _MAX_KEYS and key not in self._counts:
                self._counts = {k: v for k, v in self._counts.items() if v[0] == index}
            self._counts[key] = (index, count)
        reset = (index + 1) * self.window
        return Decision(
            allowed=allowed,
            limit=self.limit,
            remaining=self.limit - count,
            reset_epoch=math.ceil(reset),
            retry_after=0 if allowed else max(1, math.ceil(reset - now)),
        )

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()
