"""The HTTP layer every vendor provider shares: one place for how chatroster talks HTTP.

    HttpClient        one httpx client per provider (timeouts, connection reuse), with
                      retries, client-side rate limiting, host failover and redaction
    RateLimiter       a thread-safe token bucket, one per vendor rate class
    TransportError    raised when a request still fails after every retry
    run_concurrently  a bounded thread pool for apply, results in input order
    finished_items    while in effect, hears of each item `run_concurrently` finishes
    redact            secrets out of any text before it is logged or raised

What is retried: 429 and 5xx answers (``retry_statuses``), timeouts and dropped or
refused connections. What is not: any other answer, which is returned to the provider,
because only the provider knows what a vendor's 4xx means (already exists, not found);
and a connection refused by a loopback address, which fails at once: nothing is
listening there (the emulator is not running), and waiting will not start it.
A retried write may have succeeded the first time; providers make writes idempotent.

Logging (logger ``chatroster.http``; the CLI's ``-v`` shows it on stderr): each attempt
at INFO as ``[label] METHOD /path -> status (attempt N, M ms)``, with the host at DEBUG;
retries and failovers at WARNING. Every line goes through `redact` with this attempt's
credential headers; no body, query string or header is ever logged.

Every message names the call as ``METHOD URL`` (`request_target`), so the reader sees
which host was asked; the vendor's own words for a failed answer come from the
provider's ``describe`` function.

How long it waits: what the server says (``Retry-After`` in seconds or as an HTTP date,
else a ``X-RateLimit-Reset``/``X-Rate-Limit-Reset`` epoch on a 429), capped at
`SERVER_WAIT_CAP`; otherwise exponential backoff with full jitter, capped at
``backoff_cap``. A server-directed wait pauses the whole rate class, not just the one
thread that saw it, so the other workers do not spend their requests on more 429s.
"""

from __future__ import annotations

import ipaddress
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any, Self, TypeVar
from urllib.parse import quote

import httpx

from .emulator.config import DEFAULT_PORT as EMULATOR_PORT
from .errors import TransportError

log = logging.getLogger("chatroster.http")

T = TypeVar("T")
R = TypeVar("R")

SERVER_WAIT_CAP = 300.0
"""The longest a server's Retry-After or reset header may make a request wait (seconds)."""

RETRY_STATUSES = (429, 500, 502, 503, 504)
REDACTED = "***"

#: Header names whose values are credentials or signatures (redacted wherever they appear).
_SENSITIVE_HEADER_WORDS = ("key", "secret", "sign", "auth", "token", "nonce")

#: Failures of the network rather than of the request: worth another attempt.
_RETRYABLE_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)

Clock = Callable[[], float]
Sleep = Callable[[float], None]
Describe = Callable[[httpx.Response], str]
"""How a vendor words a failed answer (its error code, message and details)."""

#: How much of an answer's body a message quotes when the vendor's format is unknown.
BODY_EXCERPT = 200


def request_target(response: httpx.Response, fallback: str) -> str:
    """``METHOD URL`` of the request ``response`` answers, without the query string;
    ``fallback`` for an answer made without a request (a test's)."""
    try:
        request = response.request
    except RuntimeError:
        return fallback
    return f"{request.method} {request.url.copy_with(query=None, fragment=None)}"


def body_excerpt(response: httpx.Response) -> str:
    """The default `Describe`: the status and the start of the body, on one line."""
    text = " ".join(response.text.split())
    if len(text) > BODY_EXCERPT:
        text = text[:BODY_EXCERPT] + "..."
    return f"HTTP {response.status_code}" + (f": {text}" if text else "")


def is_loopback_url(url: str) -> bool:
    """Whether ``url`` points at this machine (127.0.0.0/8, ::1 or localhost)."""
    host = httpx.URL(url).host
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def origin(url: str) -> str:
    """``scheme://host[:port]`` of ``url``: the server, without the API's path."""
    parsed = httpx.URL(url)
    return f"{parsed.scheme}://{parsed.netloc.decode('ascii')}"


def is_refused(exc: BaseException) -> bool:
    """Whether a connection failed because nothing listens on the port (not a timeout,
    a reset or a name that does not resolve)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def nothing_listening(url: str) -> str:
    """What to say when a loopback address refuses the connection."""
    parsed = httpx.URL(url)
    start = "chatroster emulator"
    if parsed.port not in (None, EMULATOR_PORT):
        start += f" --port {parsed.port}"
    return (
        f"nothing is listening on {origin(url)} — is the emulator running? "
        f"(start it with `{start}`)"
    )


#: Shorter values are not real credentials, and replacing every occurrence of, say,
#: "s" would garble every message without protecting anything.
MIN_SECRET_LENGTH = 6


def redact(text: str, secrets: Sequence[str]) -> str:
    """``text`` with every secret (and its URL-encoded form) replaced by ``***``."""
    forms = {
        form
        for secret in secrets
        if len(secret) >= MIN_SECRET_LENGTH
        for form in (secret, quote(secret, safe=""))
    }
    # Longest first, so that a secret containing another is replaced whole.
    for form in sorted(forms, key=len, reverse=True):
        text = text.replace(form, REDACTED)
    return text


class RateLimiter:
    """A thread-safe token bucket: ``rate`` requests per ``per`` seconds.

    ``burst`` (default: one second's worth, at least 1) bounds how many requests may go
    at once after an idle spell. Keeping it small matters for vendors that count in
    fixed windows (CometChat counts per minute): a full minute's burst on top of a
    minute's steady rate would double the count in one window.
    """

    def __init__(
        self, rate: float, per: float = 1.0, burst: int | None = None, *,
        clock: Clock = time.monotonic, sleep: Sleep = time.sleep,
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


class HttpClient:
    """An httpx client with retries, rate limiting, failover and redaction.

    ``base_urls[0]`` is the primary host; the others are backups, tried in turn after a
    timeout, a connection failure or a 5xx. The client stays on the host that answered
    (a host that just failed is likely to fail again) and goes back to the primary after
    `FAILBACK_AFTER` seconds. ``headers`` is called for every attempt, so a vendor that
    signs requests with a nonce and a timestamp signs each attempt afresh.
    """

    FAILBACK_AFTER = 300.0

    def __init__(
        self,
        base_urls: Sequence[str],
        *,
        label: str,
        headers: Callable[[], dict[str, str]] | None = None,
        describe: Describe = body_excerpt,
        limiters: Mapping[str, RateLimiter] | None = None,
        timeout: float = 10.0,
        max_retries: int = 6,
        secrets: Sequence[str] = (),
        transport: httpx.BaseTransport | None = None,
        backoff_base: float = 0.25,
        backoff_cap: float = 30.0,
        pool_size: int = 32,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
    ) -> None:
        if not base_urls:
            raise ValueError("HttpClient needs at least one base URL")
        self.base_urls = [url.rstrip("/") for url in base_urls]
        self.label = label
        self.limiters = dict(limiters or {})
        self.max_retries = max_retries
        self.secrets = tuple(s for s in secrets if s)
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.counters: dict[str, int] = {"requests": 0, "retries": 0, "throttled": 0, "failovers": 0}
        self._headers = headers
        self._describe = describe
        self._clock = clock
        self._sleep = sleep
        self._random = random.Random()
        self._lock = threading.Lock()
        self._host = 0
        self._failed_over_at = 0.0
        self._hold_until: dict[str, float] = {}
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(max_connections=pool_size, max_keepalive_connections=pool_size),
            transport=transport,
            follow_redirects=False,
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------------- request

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: Any = None,
        params: Any = None,
        rate_class: str = "default",
        retry_statuses: Sequence[int] = RETRY_STATUSES,
    ) -> httpx.Response:
        """Send one request, retrying what is worth retrying; return the final response.

        ``path`` is appended to the current base URL. ``data`` as ``bytes``/``str`` is sent
        as the raw body (what a signature was computed over), as a mapping as a form.
        Answers outside ``retry_statuses`` are returned as they are, 4xx included.
        """
        attempt = 0
        while True:
            host = self._current_host()
            target = f"{method} {host}{path}"
            headers = self._headers() if self._headers is not None else {}
            self._pace(rate_class)
            started = self._clock()
            self._count("requests")
            call = _Call(method, host, path, attempt + 1, started, headers)
            try:
                response = self._send(method, host + path, json, data, params, headers)
            except _RETRYABLE_ERRORS as exc:
                self._log_call(call, type(exc).__name__)
                self._raise_if_nobody_listens(exc, host, target, attempt + 1)
                failure, status, wait = f"{type(exc).__name__}: {exc}", None, None
            except httpx.HTTPError as exc:  # a bad URL or protocol: retrying cannot help
                self._log_call(call, type(exc).__name__)
                message = f"[{self.label}] {target} failed: {type(exc).__name__}: {exc}"
                raise TransportError(self._redact(message, headers), attempts=attempt + 1) from None
            else:
                self._log_call(call, str(response.status_code))
                if response.status_code not in retry_statuses:
                    return response
                failure, status = self._describe(response), response.status_code
                wait = self._server_wait(response)
                if status == 429:
                    self._count("throttled")
            attempt += 1
            if attempt > self.max_retries:
                message = f"[{self.label}] {target} failed after {attempt} attempt(s): {failure}"
                raise TransportError(
                    self._redact(message, headers), status=status, attempts=attempt
                )
            if status is None or status >= 500:
                self._fail_over(host)
            delay = self._delay(attempt, wait, rate_class)
            self._count("retries")
            log.warning(self._redact(
                f"[{self.label}] {target}: {failure}; retry {attempt} of "
                f"{self.max_retries} in {delay:.2f}s", headers,
            ))
            self._sleep(delay)

    def _raise_if_nobody_listens(
        self, exc: Exception, host: str, target: str, attempts: int
    ) -> None:
        """Fail at once when a loopback address refuses: no process listens there, and
        retrying for a minute would only hide that (a remote host may be restarting)."""
        if is_refused(exc) and is_loopback_url(host):
            message = f"[{self.label}] {target}: {nothing_listening(host)}"
            raise TransportError(self._redact(message), attempts=attempts) from None

    def _send(
        self, method: str, url: str, json: Any, data: Any, params: Any, headers: dict[str, str]
    ) -> httpx.Response:
        if isinstance(data, (bytes, str)):
            return self._client.request(
                method, url, content=data, params=params, headers=headers
            )
        return self._client.request(
            method, url, json=json, data=data, params=params, headers=headers
        )

    # -------------------------------------------------------------------- pacing

    def _pace(self, rate_class: str) -> None:
        """Wait out a server-directed pause of this rate class, then take a token."""
        with self._lock:
            hold = self._hold_until.get(rate_class, 0.0) - self._clock()
        if hold > 0:
            self._sleep(hold)
        limiter = self.limiters.get(rate_class) or self.limiters.get("default")
        if limiter is not None:
            limiter.acquire()

    def _server_wait(self, response: httpx.Response) -> float | None:
        """Seconds the server asked us to wait, capped; ``None`` if it did not say."""
        wait = retry_after_seconds(response.headers.get("Retry-After"))
        if wait is None and response.status_code == 429:
            reset = response.headers.get("X-RateLimit-Reset") or response.headers.get(
                "X-Rate-Limit-Reset"
            )
            wait = reset_seconds(reset)
        return None if wait is None else min(max(wait, 0.0), SERVER_WAIT_CAP)

    def _delay(self, attempt: int, server_wait: float | None, rate_class: str) -> float:
        if server_wait is None:
            # Full jitter: spreads retries of many workers evenly over the window.
            ceiling = min(self.backoff_cap, self.backoff_base * 2 ** (attempt - 1))
            return self._random.uniform(0, ceiling)
        # A little jitter on top, so that paused workers do not all return at once.
        delay = server_wait + self._random.uniform(0, self.backoff_base)
        with self._lock:
            until = self._clock() + server_wait
            self._hold_until[rate_class] = max(self._hold_until.get(rate_class, 0.0), until)
        return delay

    # ------------------------------------------------------------------ failover

    def _current_host(self) -> str:
        with self._lock:
            if self._host and self._clock() - self._failed_over_at >= self.FAILBACK_AFTER:
                self._host = 0
            return self.base_urls[self._host]

    def _fail_over(self, failed_host: str) -> None:
        if len(self.base_urls) < 2:
            return
        with self._lock:
            if self.base_urls[self._host] != failed_host:
                return  # another worker has already moved on
            self._host = (self._host + 1) % len(self.base_urls)
            self._failed_over_at = self._clock()
            self.counters["failovers"] += 1
            moved_to = self.base_urls[self._host]
        log.warning(self._redact(f"[{self.label}] {failed_host} failing; switching to {moved_to}"))

    # ---------------------------------------------------------------- bookkeeping

    def _count(self, name: str) -> None:
        with self._lock:
            self.counters[name] += 1

    def _log_call(self, call: _Call, outcome: str) -> None:
        """One attempt, at INFO (the host too at DEBUG): never a body, query or header."""
        if not log.isEnabledFor(logging.INFO):
            return
        path = call.path.split("?", 1)[0]
        where = call.host + path if log.isEnabledFor(logging.DEBUG) else path
        milliseconds = (self._clock() - call.started) * 1000
        log.info(self._redact(
            f"[{self.label}] {call.method} {where} -> {outcome} "
            f"(attempt {call.attempt}, {milliseconds:.0f} ms)", call.headers,
        ))

    def redacted(self, text: str) -> str:
        """``text`` without this client's secrets: for messages a provider builds itself."""
        return self._redact(text)

    def _redact(self, text: str, headers: Mapping[str, str] | None = None) -> str:
        """Static secrets plus this attempt's credential-like header values (signatures)."""
        extra = [
            value for name, value in (headers or {}).items()
            if any(word in name.lower() for word in _SENSITIVE_HEADER_WORDS) and len(value) >= 4
        ]
        return redact(text, [*self.secrets, *extra])


@dataclass(frozen=True, slots=True)
class _Call:
    """One attempt at a request, as its log line names it."""

    method: str
    host: str
    path: str
    attempt: int
    started: float
    headers: Mapping[str, str]


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


ItemListener = Callable[[object], None]
_item_listeners: list[ItemListener] = []
_listeners_lock = threading.Lock()


@contextmanager
def finished_items(listener: ItemListener) -> Iterator[None]:
    """Within the block, ``listener`` is called (from the worker thread) with each item
    `run_concurrently` finishes, whoever called it. Apply's progress counts the changes
    a provider writes one by one this way, between the batches it hands over."""
    with _listeners_lock:
        _item_listeners.append(listener)
    try:
        yield
    finally:
        with _listeners_lock:
            _item_listeners.remove(listener)


def _finished(item: object) -> None:
    for listener in tuple(_item_listeners):
        listener(item)


def run_concurrently(
    func: Callable[[T], R], items: Sequence[T], concurrency: int
) -> list[tuple[T, R | BaseException]]:
    """``func`` over ``items`` on at most ``concurrency`` threads; each item paired with
    its result or the exception it raised, in the order of ``items``."""
    def guarded(item: T) -> R | BaseException:
        try:
            return func(item)
        except Exception as exc:  # noqa: BLE001 - reported per item to the caller
            return exc
        finally:
            if _item_listeners:
                _finished(item)

    if concurrency <= 1 or len(items) <= 1:
        return [(item, guarded(item)) for item in items]
    with ThreadPoolExecutor(max_workers=min(concurrency, len(items))) as pool:
        return list(zip(items, pool.map(guarded, items), strict=True))
