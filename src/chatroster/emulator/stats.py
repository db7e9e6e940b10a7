"""Counters of the requests the emulator answered, by endpoint and by status."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

DROPPED = "dropped"
"""The status recorded for a connection closed without a response."""


class Stats:
    """Thread-safe request counters; ``snapshot()`` is what ``GET /_emulator/stats`` shows."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_endpoint: dict[str, Counter[str]] = {}
        self._faults: Counter[str] = Counter()
        self._rate_limited: Counter[str] = Counter()
        self._since = time.time()

    def record(self, endpoint: str, status: int | str) -> None:
        """One answered request; ``endpoint`` is ``"METHOD /path/{template}"``."""
        with self._lock:
            self._by_endpoint.setdefault(endpoint, Counter())[str(status)] += 1

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
