"""Nexconn request signing, checked the way the vendor checks it.

Every request carries ``App-Key``, ``Nonce``, ``Timestamp`` and ``Signature`` (also
accepted with an ``RC-`` prefix), where ``Signature`` is the lowercase hex SHA1 of
``app_secret + nonce + timestamp``; the body is not signed. v4 sends the timestamp in
milliseconds, the legacy endpoints in seconds. A request is refused when a header is
missing, the key or signature is wrong, the timestamp is too far from now, or its nonce
was already used (a replay).
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

HEADERS = ("App-Key", "Nonce", "Timestamp", "Signature")
MAX_NONCE_LENGTH = 18
"""The reference allows at most 18 characters (the SDK sends up to 18 digits)."""

TimestampUnit = Literal["ms", "s"]


def sign(app_secret: str, nonce: str, timestamp: str) -> str:
    """The vendor's formula: plain concatenation, UTF-8, SHA1, lowercase hex."""
    return hashlib.sha1((app_secret + nonce + timestamp).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class SignatureRefused:
    """Why a request's signature was refused (the vendor answers 401, code 1004)."""

    reason: str


class NonceCache:
    """Nonces seen recently, bounded in size and in time; thread-safe.

    A nonce only needs remembering while a request carrying it could still pass the
    timestamp check; after that the timestamp itself refuses the replay.
    """

    def __init__(self, ttl: float, max_size: int, clock: Callable[[], float]) -> None:
        self._ttl = ttl
        self._max_size = max_size
        self._clock = clock
        self._expiry: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def seen_before(self, nonce: str) -> bool:
        """Record ``nonce``; True if it was already recorded and has not expired."""
        now = self._clock()
        with self._lock:
            self._evict(now)
            if nonce in self._expiry:
                return True
            self._expiry[nonce] = now + self._ttl
            return False

    def _evict(self, now: float) -> None:
        # Entries are in insertion order and share one TTL, so expiry order is the same.
        while self._expiry and next(iter(self._expiry.values())) <= now:
            self._expiry.popitem(last=False)
        while len(self._expiry) >= self._max_size:
            self._expiry.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._expiry.clear()

    def __len__(self) -> int:
        return len(self._expiry)


class SignatureVerifier:
    """Checks the four signing headers of one app against its key and secret."""

    def __init__(
        self,
        app_key: str,
        app_secret: str,
        *,
        tolerance_ms: int,
        nonce_cache_size: int = 100_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._app_key = app_key
        self._app_secret = app_secret
        self._tolerance_ms = tolerance_ms
        self._clock = clock
        # A timestamp may be up to tolerance in the future, so keep nonces twice as long.
        self.nonces = NonceCache(2 * tolerance_ms / 1000, nonce_cache_size, clock)

    def verify(self, headers: Mapping[str, str], unit: TimestampUnit) -> SignatureRefused | None:
        """None if the request is properly signed, else why it is refused."""
        values = {name: _header(headers, name) for name in HEADERS}
        missing = [name for name, value in values.items() if not value]
        if missing:
            return SignatureRefused(f"missing header(s): {', '.join(missing)}")
        app_key, nonce, timestamp, signature = (values[name] for name in HEADERS)
        if app_key != self._app_key:
            return SignatureRefused("App-Key is not known")
        if len(nonce) > MAX_NONCE_LENGTH:
            return SignatureRefused(f"Nonce is longer than {MAX_NONCE_LENGTH} characters")
        stale = self._check_timestamp(timestamp, unit)
        if stale:
            return SignatureRefused(stale)
        expected = sign(self._app_secret, nonce, timestamp)
        if not hmac.compare_digest(expected, signature.lower()):
            return SignatureRefused("Signature does not match")
        # Only a correctly signed nonce is recorded, so forged requests cannot burn nonces.
        if self.nonces.seen_before(nonce):
            return SignatureRefused("Nonce was already used (replayed request)")
        return None

    def _check_timestamp(self, timestamp: str, unit: TimestampUnit) -> str | None:
        if not timestamp.isascii() or not timestamp.isdigit():
            return "Timestamp is not a decimal integer"
        sent_ms = int(timestamp) * (1000 if unit == "s" else 1)
        now_ms = self._clock() * 1000
        if abs(now_ms - sent_ms) > self._tolerance_ms:
            example = "milliseconds" if unit == "ms" else "seconds"
            return (
                f"Timestamp is outside the allowed window of {self._tolerance_ms // 1000} s "
                f"(expected Unix time in {example})"
            )
        return None


def _header(headers: Mapping[str, str], name: str) -> str:
    return headers.get(name) or headers.get(f"RC-{name}") or ""
