"""The HTTP layer every vendor provider shares: one place for how chatroster talks HTTP.

    client.py       HttpClient: one httpx client per provider (timeouts, connection
                    reuse), with retries, host failover, request ids and logging;
                    `request_target`
                    and `body_excerpt` name a call and its answer in messages
    pacing.py       RateLimiter, a thread-safe token bucket per vendor rate class, and
                    how long a server asks us to wait (`retry_after_seconds`,
                    `reset_seconds`, capped at `SERVER_WAIT_CAP`)
    redaction.py    `redact`: secrets out of any text before it is logged or raised
    loopback.py     a refused loopback address: nothing is listening (the emulator)
    concurrency.py  `run_concurrently`, a bounded thread pool for apply, results in input
                    order; `finished_items` hears of each item it finishes
    paging.py       `numbered_pages`: a list paged by number, several pages in flight

`TransportError` (from `chatroster.errors`) is raised when a request still fails after
every retry. Named ``http`` for what it does; it is ``chatroster.http`` to every import
(all of them relative or absolute through ``chatroster``), so it never hides the
standard library's ``http``, which httpx and uvicorn import.
"""

from __future__ import annotations

from ..errors import TransportError
from .client import RETRY_STATUSES, Describe, HttpClient, body_excerpt, new_request_id, request_target
from .concurrency import ItemListener, finished_items, run_concurrently
from .pacing import SERVER_WAIT_CAP, RateLimiter, reset_seconds, retry_after_seconds
from .redaction import REDACTED, redact

__all__ = [
    "REDACTED",
    "RETRY_STATUSES",
    "SERVER_WAIT_CAP",
    "Describe",
    "HttpClient",
    "ItemListener",
    "RateLimiter",
    "TransportError",
    "body_excerpt",
    "finished_items",
    "new_request_id",
    "redact",
    "request_target",
    "reset_seconds",
    "retry_after_seconds",
    "run_concurrently",
]
