"""How fast chatroster asks: a client-side token bucket per vendor rate class, and how
long a server tells us to wait.

A server's wait is ``Retry-After`` in seconds or as an HTTP date, else (on a 429) a
``X-RateLimit-Reset``/``X-Rate-Limit-Reset`` epoch, capped at `SERVER_WAIT_CAP`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC
from email.utils import parsedate_to_datetime

import httpx

Clock = Callable[[], float]
Sleep = Callable[[float], None]

SERVER_WAIT_CAP = 300.0
"""The longest a server's Retry-After or reset header may make a request wait (seconds)."""


class RateLimiter:
    """A thread-safe token bucket: ``rate`` requests per ``per`` seconds.

    ``burst`` (default: one second's worth, at least 1) bounds how many requests may go
    at once after an idle spell. Keeping it small matters for vendors that count in
    fixed windows (CometChat counts per minute): a full minute's burst on top of a
    minute's steady rate would double the count in one window.
    """

    def __init__(
        self,
        rate: float,
        per: float = 1.0,
        burst: int | None = None,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
    ) -> None:
        if rate <= 0 or per <= 0:
            raise ValueError("a rate limit needs a positive rate and period")
        self.per_second = rate / per
        self.capacity = float(burst if burst is not None else max(1, int(self.per_second)))
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.capacity
        self._at = clock()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        """Take one token, sleeping until it is free. Callers are served in arrival order:
        each reserves its token at once (the balance may go negative) and sleeps off the debt.
        """
        with self._lock:
            now = self._clock()
            self._tokens = min(self.capacity, self._tokens + (now - self._at) * self.per_second)
            self._at = now
            self._tokens -= 1.0
            wait = -self._tokens / self.per_second if self._tokens < 0 else 0.0
        if wait > 0:
            self._sleep(wait)


def server_wait(response: httpx.Response) -> float | None:
    """Seconds the server asked us to wait, capped; ``None`` if it did not say."""
    wait = retry_after_seconds(response.headers.get("Retry-After"))
    if wait is None and response.status_code == 429:
        reset = response.headers.get("X-RateLimit-Reset") or response.headers.get("X-Rate-Limit-Reset")
        wait = reset_seconds(reset)
    return None if wait is None else min(max(wait, 0.0), SERVER_WAIT_CAP)


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """A ``Retry-After`` header as seconds from now: delay-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = now if now is not None else time.time()
    return when.timestamp() - current


def reset_seconds(value: str | None, now: float | None = None) -> float | None:
    """A rate-limit reset header as seconds from now. Vendors document a UNIX epoch; a
    small number is read as seconds to wait, which some gateways send instead."""
    if not value:
        return None
    try:
        number = float(value.strip())
    except ValueError:
        return None
    if number < 1e9:
        return number
    current = now if now is not None else time.time()
    return number - current
