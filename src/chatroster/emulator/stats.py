"""Counters of the requests the emulator answered, by endpoint and by status, and the
last requests that carried a request id (``X-Request-ID``), for ``/_emulator/requests``.

Nexconn takes an optional ``X-Request-ID`` (at most 36 characters; its SDK sends a
UUID4) and documents nothing more about it: no answer echoes it, no limit is said to be
enforced. So the emulator neither checks nor echoes it; it keeps it, so that a test (or
a user) can match a client's record of its calls with what the server answered.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from typing import Any

DROPPED = "dropped"
"""The status recorded for a connection closed without a response."""

REQUEST_ID_HEADER = "x-request-id"
KEPT_REQUESTS = 10_000
"""How many requests with an id ``/_emulator/requests`` keeps (the latest)."""


class Stats:
    """Thread-safe request counters; ``snapshot()`` is what ``GET /_emulator/stats`` shows."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_endpoint: dict[str, Counter[str]] = {}
        self._faults: Counter[str] = Counter()
        self._rate_limited: Counter[str] = Counter()
        self._requests: deque[dict[str, str]] = deque(maxlen=KEPT_REQUESTS)
        self._since = time.time()

    def record(self, endpoint: str, status: int | str, request_id: str | None = None) -> None:
        """One answered request; ``endpoint`` is ``"METHOD /path/{template}"``."""
        with self._lock:
            self._by_endpoint.setdefault(endpoint, Counter())[str(status)] += 1
            if request_id:
                self._requests.append({"request_id": request_id, "endpoint": endpoint, "status": str(status)})

    def requests(self) -> list[dict[str, str]]:
        """The latest requests that carried an id, oldest first: what
        ``GET /_emulator/requests`` shows."""
        with self._lock:
            return list(self._requests)

    def record_fault(self, fault: str) -> None:
        with self._lock:
            self._faults[fault] += 1

    def record_rate_limited(self, vendor: str) -> None:
        with self._lock:
            self._rate_limited[vendor] += 1

    def reset(self) -> None:
        with self._lock:
            self._by_endpoint.clear()
            self._faults.clear()
            self._rate_limited.clear()
            self._requests.clear()
            self._since = time.time()

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            by_status: Counter[str] = Counter()
            for counts in self._by_endpoint.values():
                by_status.update(counts)
            return {
                "since": int(self._since),
                "total": sum(by_status.values()),
                "by_status": dict(sorted(by_status.items())),
                "by_endpoint": {
                    endpoint: dict(sorted(counts.items()))
                    for endpoint, counts in sorted(self._by_endpoint.items())
                },
                "faults": dict(sorted(self._faults.items())),
                "rate_limited": dict(sorted(self._rate_limited.items())),
            }
