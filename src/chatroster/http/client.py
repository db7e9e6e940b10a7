"""HttpClient: one httpx client per provider (timeouts, connection reuse), with retries,
client-side rate limiting, host failover and redaction.

What is retried: 429 and 5xx answers (``retry_statuses``), timeouts and dropped or
refused connections. What is not: any other answer, which is returned to the provider,
because only the provider knows what a vendor's 4xx means (already exists, not found);
and a connection refused by a loopback address, which fails at once: nothing is
listening there (the emulator is not running), and waiting will not start it.
A retried write may have succeeded the first time; providers make writes idempotent.

Logging (logger ``chatroster.http``; the CLI's ``-v`` shows it on stderr): each attempt
at INFO as ``[label] METHOD /path -> status (attempt N, M ms)``, with the host at DEBUG;
retries and failovers at WARNING. Every line goes through `redact` with this attempt's
credential headers; no body, query string or header is ever logged, except the request
id, which is not a secret and is what a vendor's support asks for.

Request ids (``request_id_header``, Nexconn's ``X-Request-ID``): one id per call, a UUID4
unless the caller gives one, sent with every attempt of the call (retries and failover
alike), so that the vendor can match the attempts of one call; the attempt's log line
ends with it.

Every message names the call as ``METHOD URL`` (`request_target`), so the reader sees
which host was asked; the vendor's own words for a failed answer come from the
provider's ``describe`` function.

How long it waits: what the server says (`pacing.server_wait`); otherwise exponential
backoff with full jitter, capped at ``backoff_cap``. A server-directed wait pauses the
whole rate class, not just the one thread that saw it, so the other workers do not
spend their requests on more 429s.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Self

import httpx

from ..errors import TransportError
from .loopback import is_loopback_url, is_refused, nothing_listening
from .pacing import Clock, RateLimiter, Sleep, server_wait
from .redaction import header_secrets, redact

log = logging.getLogger("chatroster.http")

RETRY_STATUSES = (429, 500, 502, 503, 504)

#: Failures of the network rather than of the request: worth another attempt.
_RETRYABLE_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)

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
        request_id_header: str | None = None,
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
        self.request_id_header = request_id_header
        """The header that carries each call's id (`new_request_id`); ``None``: none sent."""
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
        request_id: str | None = None,
    ) -> httpx.Response:
        """Send one request, retrying what is worth retrying; return the final response.

        ``path`` is appended to the current base URL. ``data`` as ``bytes``/``str`` is sent
        as the raw body (what a signature was computed over), as a mapping as a form.
        Answers outside ``retry_statuses`` are returned as they are, 4xx included.
        ``request_id``: the call's id, where the client sends one (a new one if not given).
        """
        if self.request_id_header is None:
            request_id = None
        elif request_id is None:
            request_id = new_request_id()
        attempt = 0
        while True:
            host = self._current_host()
            target = f"{method} {host}{path}"
            headers = self._headers() if self._headers is not None else {}
            if self.request_id_header is not None and request_id is not None:
                headers = {**headers, self.request_id_header: request_id}
            self._pace(rate_class)
            started = self._clock()
            self._count("requests")
            call = _Call(method, host, path, attempt + 1, started, headers, request_id)
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
                wait = server_wait(response)
                if status == 429:
                    self._count("throttled")
            attempt += 1
            if attempt > self.max_retries:
                message = f"[{self.label}] {target} failed after {attempt} attempt(s): {failure}"
                raise TransportError(self._redact(message, headers), status=status, attempts=attempt)
            if status is None or status >= 500:
                self._fail_over(host)
            delay = self._delay(attempt, wait, rate_class)
            self._count("retries")
            log.warning(
                self._redact(
                    f"[{self.label}] {target}: {failure}; retry {attempt} of "
                    f"{self.max_retries} in {delay:.2f}s",
                    headers,
                )
            )
            self._sleep(delay)

    def _raise_if_nobody_listens(self, exc: Exception, host: str, target: str, attempts: int) -> None:
        """Fail at once when a loopback address refuses: no process listens there, and
        retrying for a minute would only hide that (a remote host may be restarting)."""
        if is_refused(exc) and is_loopback_url(host):
            message = f"[{self.label}] {target}: {nothing_listening(host)}"
            raise TransportError(self._redact(message), attempts=attempts) from None

    def _send(
        self, method: str, url: str, json: Any, data: Any, params: Any, headers: dict[str, str]
    ) -> httpx.Response:
        if isinstance(data, (bytes, str)):
            return self._client.request(method, url, content=data, params=params, headers=headers)
        return self._client.request(method, url, json=json, data=data, params=params, headers=headers)

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

    def _delay(self, attempt: int, wait: float | None, rate_class: str) -> float:
        if wait is None:
            # Full jitter: spreads retries of many workers evenly over the window.
            ceiling = min(self.backoff_cap, self.backoff_base * 2 ** (attempt - 1))
            return self._random.uniform(0, ceiling)
        # A little jitter on top, so that paused workers do not all return at once.
        delay = wait + self._random.uniform(0, self.backoff_base)
        with self._lock:
            until = self._clock() + wait
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
        request = f", request id {call.request_id}" if call.request_id else ""
        log.info(
            self._redact(
                f"[{self.label}] {call.method} {where} -> {outcome} "
                f"(attempt {call.attempt}, {milliseconds:.0f} ms{request})",
                call.headers,
            )
        )

    def redacted(self, text: str) -> str:
        """``text`` without this client's secrets: for messages a provider builds itself."""
        return self._redact(text)

    def _redact(self, text: str, headers: Mapping[str, str] | None = None) -> str:
        """Static secrets plus this attempt's credential-like header values (signatures)."""
        return redact(text, [*self.secrets, *header_secrets(headers)])


@dataclass(frozen=True, slots=True)
class _Call:
    """One attempt at a request, as its log line names it."""

    method: str
    host: str
    path: str
    attempt: int
    started: float
    headers: Mapping[str, str]
    request_id: str | None = None


def new_request_id() -> str:
    """A fresh id for one call: a UUID4, 36 characters (Nexconn takes at most 36)."""
    return str(uuid.uuid4())
