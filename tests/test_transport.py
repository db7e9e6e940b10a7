"""The shared HTTP layer: retries, waits, failover, rate limiting, redaction.

The network is replaced by `httpx.MockTransport` (the vendor's side is what cannot be
real here); the code under test, `HttpClient`, is the real one. Sleeps are recorded
instead of slept, so the waits can be checked exactly and the tests stay fast.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import format_datetime

import httpx
import pytest

from chatroster.errors import ProviderError
from chatroster.http import (
    SERVER_WAIT_CAP,
    HttpClient,
    RateLimiter,
    TransportError,
    redact,
    run_concurrently,
)

SECRET = "sk-live-0123456789"

Handler = Callable[[httpx.Request], httpx.Response]


class Script:
    """Answers requests from a list of responses (or exceptions), recording each request."""

    def __init__(self, *answers: httpx.Response | Exception | int) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, int):
            return httpx.Response(answer, json={"status": answer})
        return answer


def client(handler: Handler, sleeps: list[float] | None = None, **kwargs: object) -> HttpClient:
    recorded = sleeps if sleeps is not None else []
    options: dict[str, object] = {
        "label": "test",
        "max_retries": 4,
        "secrets": (SECRET,),
        "sleep": recorded.append,
    }
    options.update(kwargs)
    base_urls = options.pop("base_urls", ["https://primary.test/v3"])
    return HttpClient(
        base_urls,  # type: ignore[arg-type]
        transport=httpx.MockTransport(handler),
        **options,  # type: ignore[arg-type]
    )


class FakeTime:
    """A monotonic clock that only sleeping moves; every sleep is recorded."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


# --------------------------------------------------------------------------- retries


def test_retries_5xx_until_it_succeeds() -> None:
    script = Script(500, 503, 200)
    http = client(script)
    response = http.request("GET", "/users")
    assert response.status_code == 200
    assert len(script.requests) == 3
    assert http.counters == {"requests": 3, "retries": 2, "throttled": 0, "failovers": 0}


def test_returns_4xx_at_once_without_retrying() -> None:
    script = Script(httpx.Response(404, json={"error": {"code": "ERR_UID_NOT_FOUND"}}))
    http = client(script)
    assert http.request("GET", "/users/x").status_code == 404
    assert len(script.requests) == 1


def test_retries_timeouts_and_dropped_connections() -> None:
    script = Script(
        httpx.ReadTimeout("read timed out"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        httpx.ConnectError("connection refused"),
        200,
    )
    http = client(script)
    assert http.request("POST", "/users", json={"uid": "a"}).status_code == 200
    assert http.counters["retries"] == 3


def test_raises_transport_error_when_retries_are_exhausted() -> None:
    http = client(Script(503), max_retries=2)
    with pytest.raises(TransportError) as caught:
        http.request("GET", "/users")
    assert caught.value.status == 503
    assert caught.value.attempts == 3
    message = str(caught.value)
    assert "[test] GET https://primary.test/v3/users failed after 3 attempt(s): HTTP 503" in message
    assert isinstance(caught.value, ProviderError)


def test_the_last_answer_is_given_in_the_vendors_words() -> None:
    body = {"code": 1000, "errorMessage": "Internal error"}
    http = client(
        Script(httpx.Response(503, json=body)),
        max_retries=1,
        describe=lambda r: f"HTTP {r.status_code}, code {r.json()['code']}",
    )
    with pytest.raises(TransportError) as caught:
        http.request("POST", "/v4/user/get")
    assert str(caught.value).endswith("failed after 2 attempt(s): HTTP 503, code 1000")


def test_without_the_vendors_words_the_start_of_the_body_is_quoted() -> None:
    page = "<html>" + "x" * 500 + "</html>"
    http = client(Script(httpx.Response(502, text=page)), max_retries=0)
    with pytest.raises(TransportError) as caught:
        http.request("GET", "/users")
    assert "HTTP 502: <html>xxx" in str(caught.value) and len(str(caught.value)) < 400


# -------------------------------------------------------------- refused connections


def closed_loopback_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (it was free a moment ago)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def refused(host: str) -> httpx.ConnectError:
    """What httpx raises when a host refuses the connection (the OS error as its cause)."""
    error = httpx.ConnectError(f"[Errno 111] Connection refused ({host})")
    error.__cause__ = ConnectionRefusedError(111, "Connection refused")
    return error


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_a_refused_loopback_connection_fails_at_once_saying_to_start_the_emulator(
    host: str,
) -> None:
    port = closed_loopback_port()
    sleeps: list[float] = []
    http = HttpClient([f"http://{host}:{port}/v3"], label="test", sleep=sleeps.append)
    with pytest.raises(TransportError) as caught:
        http.request("GET", "/users")
    assert caught.value.attempts == 1 and sleeps == [] and http.counters["retries"] == 0
    assert str(caught.value) == (
        f"[test] GET http://{host}:{port}/v3/users: nothing is listening on "
        f"http://{host}:{port} — is the emulator running? "
        f"(start it with `chatroster emulator --port {port}`)"
    )


def test_the_emulators_default_port_needs_no_port_option_in_the_hint() -> None:
    http = client(Script(refused("127.0.0.1")), base_urls=["http://127.0.0.1:8765"])
    with pytest.raises(TransportError) as caught:
        http.request("POST", "/v4/user/get")
    assert "(start it with `chatroster emulator`)" in str(caught.value)


def test_a_refused_remote_connection_keeps_its_retries_and_names_the_host() -> None:
    script = Script(refused("primary.test"))
    http = client(script, max_retries=2)
    with pytest.raises(TransportError) as caught:
        http.request("GET", "/users")
    assert len(script.requests) == 3
    assert "[test] GET https://primary.test/v3/users failed after 3 attempt(s): ConnectError" in str(
        caught.value
    )
    assert "emulator" not in str(caught.value)


def test_a_loopback_timeout_is_retried_like_any_other() -> None:
    script = Script(httpx.ConnectTimeout("timed out"), 200)
    http = client(script, base_urls=["http://127.0.0.1:8765"])
    assert http.request("GET", "/users").status_code == 200
    assert http.counters["retries"] == 1


def test_an_error_retrying_cannot_fix_is_raised_at_once_as_a_transport_error() -> None:
    script = Script(httpx.UnsupportedProtocol(f"no scheme in ftp://{SECRET}@x"))
    http = client(script)
    with pytest.raises(TransportError) as caught:
        http.request("GET", "/users")
    assert len(script.requests) == 1
    assert "UnsupportedProtocol" in str(caught.value) and SECRET not in str(caught.value)


def test_a_status_outside_retry_statuses_is_returned() -> None:
    script = Script(503, 200)
    http = client(script)
    response = http.request("GET", "/users", retry_statuses=(429,))
    assert response.status_code == 503
    assert len(script.requests) == 1


class Draws:
    """The client's random source, replaced: every draw is ``fraction`` of the way
    through the range asked for, so that a jittered wait is known exactly."""

    def __init__(self, fraction: float) -> None:
        self.fraction = fraction
        self.asked: list[tuple[float, float]] = []

    def uniform(self, low: float, high: float) -> float:
        self.asked.append((low, high))
        return low + (high - low) * self.fraction


def with_draws(http: HttpClient, fraction: float) -> Draws:
    # HttpClient takes its clock and sleep as parameters but not its random source;
    # its `_random` attribute is the one seam for it.
    draws = Draws(fraction)
    http._random = draws  # type: ignore[assignment]
    return draws


@pytest.mark.parametrize("fraction", [1.0, 0.25])
def test_backoff_waits_a_jittered_share_of_an_exponential_capped_ceiling(
    fraction: float,
) -> None:
    sleeps: list[float] = []
    http = client(Script(500), sleeps, max_retries=8, backoff_base=1.0, backoff_cap=5.0)
    draws = with_draws(http, fraction)
    with pytest.raises(TransportError):
        http.request("GET", "/users")
    ceilings = [1.0, 2.0, 4.0, 5.0, 5.0, 5.0, 5.0, 5.0]
    assert draws.asked == [(0, ceiling) for ceiling in ceilings]  # full jitter: 0 to ceiling
    # What is slept is the draw itself: neither less (retrying at once) nor more.
    assert sleeps == pytest.approx([ceiling * fraction for ceiling in ceilings])


def test_every_retry_waits_before_it_is_sent() -> None:
    events: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        events.append("request")
        return httpx.Response(503 if events.count("request") < 5 else 200)

    http = HttpClient(
        ["https://primary.test"],
        label="test",
        max_retries=4,
        transport=httpx.MockTransport(handler),
        backoff_base=0.5,
        sleep=lambda seconds: events.append(f"sleep {seconds:g}"),
    )
    with_draws(http, 1.0)
    assert http.request("GET", "/users").status_code == 200
    assert events == [
        "request",
        "sleep 0.5",
        "request",
        "sleep 1",
        "request",
        "sleep 2",
        "request",
        "sleep 4",
        "request",
    ]


# ----------------------------------------------------------------------- server waits


def throttled(**headers: str) -> httpx.Response:
    body = {"error": {"code": "ERR_TOO_MANY_REQUESTS", "message": "slow down"}}
    return httpx.Response(429, headers=headers, json=body)


# The jitter on top of a server's wait is drawn as its whole range (`Draws(1.0)`), so
# each wait is exact; a wait given as a time is bracketed by the clock read just before
# and just after the request, so that no tolerance is needed however slow the machine.


def server_wait(answer: httpx.Response) -> list[float]:
    """The waits of a request answered first with ``answer``, then with 200."""
    fake = FakeTime()
    http = client(Script(answer, 200), backoff_base=0.1, clock=fake.clock, sleep=fake.sleep)
    with_draws(http, 1.0)
    assert http.request("GET", "/users").status_code == 200
    assert http.counters["throttled"] == (answer.status_code == 429)
    return fake.sleeps


def test_honours_retry_after_in_seconds() -> None:
    assert server_wait(throttled(**{"Retry-After": "7"})) == [pytest.approx(7.1)]


def test_honours_retry_after_on_a_5xx_too() -> None:
    answer = httpx.Response(503, headers={"Retry-After": "4"})
    assert server_wait(answer) == [pytest.approx(4.1)]


def test_honours_retry_after_as_an_http_date() -> None:
    start = time.time()
    when = datetime.fromtimestamp(int(start) + 20, UTC)  # an HTTP date has whole seconds
    (slept,) = server_wait(throttled(**{"Retry-After": format_datetime(when, usegmt=True)}))
    end = time.time()
    assert when.timestamp() - end + 0.1 <= slept <= when.timestamp() - start + 0.1


@pytest.mark.parametrize("header", ["X-RateLimit-Reset", "X-Rate-Limit-Reset"])
def test_waits_until_the_reset_epoch_of_a_429(header: str) -> None:
    start = time.time()
    reset = int(start) + 12
    (slept,) = server_wait(throttled(**{header: str(reset)}))
    end = time.time()
    assert reset - end + 0.1 <= slept <= reset - start + 0.1


def test_a_server_wait_longer_than_the_cap_is_cut_to_the_cap() -> None:
    waits = server_wait(throttled(**{"Retry-After": "86400"}))
    assert waits == [pytest.approx(SERVER_WAIT_CAP + 0.1)]


def test_a_server_wait_pauses_the_whole_rate_class() -> None:
    # A 429 on /first asks for 30 s. While /first sleeps that off, another worker sends
    # /core (another rate class: goes at once) and /second (the same class: waits out
    # what is left of the pause). The other worker runs inside /first's sleep, on a
    # clock that only the sleeps move, so the order of events is exact.
    now = [1000.0]
    events: list[tuple[str, float]] = []
    throttled_once = [False]

    def handler(request: httpx.Request) -> httpx.Response:
        events.append((request.url.path, now[0]))
        if request.url.path == "/first" and not throttled_once[0]:
            throttled_once[0] = True
            return throttled(**{"Retry-After": "30"})
        return httpx.Response(200)

    def sleep(seconds: float) -> None:
        events.append(("sleep", seconds))
        woken = now[0] + seconds
        if len([e for e in events if e[0] == "sleep"]) == 1:  # /first's wait
            http.request("POST", "/core", rate_class="core")
            http.request("GET", "/second", rate_class="standard")
        now[0] = max(now[0], woken)

    http = HttpClient(
        ["https://primary.test"],
        label="test",
        backoff_base=0.1,
        transport=httpx.MockTransport(handler),
        clock=lambda: now[0],
        sleep=sleep,
    )
    with_draws(http, 1.0)
    assert http.request("GET", "/first", rate_class="standard").status_code == 200
    assert events == [
        ("/first", 1000.0),
        ("sleep", pytest.approx(30.1)),  # the server's 30 s and a little jitter
        ("/core", 1000.0),  # another class: not paused
        ("sleep", 30.0),  # the same class: paused until 1030
        ("/second", 1030.0),
        ("/first", pytest.approx(1030.1)),  # /first's own retry, after its wait
    ]


# ---------------------------------------------------------------------------- failover


def test_fails_over_to_the_backup_host_and_stays_there() -> None:
    script = Script(httpx.ConnectError("refused"), 200, 200)
    http = client(script, base_urls=["https://primary.test", "https://backup.test"])
    http.request("POST", "/user/get")
    http.request("POST", "/user/get")
    hosts = [request.url.host for request in script.requests]
    assert hosts == ["primary.test", "backup.test", "backup.test"]
    assert http.counters["failovers"] == 1


def test_a_429_does_not_switch_hosts() -> None:
    script = Script(throttled(), 200)
    http = client(script, base_urls=["https://primary.test", "https://backup.test"])
    http.request("POST", "/user/get")
    assert [r.url.host for r in script.requests] == ["primary.test", "primary.test"]


def test_goes_back_to_the_primary_host_after_a_while() -> None:
    now = [1000.0]
    script = Script(503, 200, 200)
    http = client(script, base_urls=["https://primary.test", "https://backup.test"], clock=lambda: now[0])
    http.request("GET", "/a")
    now[0] += HttpClient.FAILBACK_AFTER
    http.request("GET", "/b")
    assert [r.url.host for r in script.requests] == ["primary.test", "backup.test", "primary.test"]


# ------------------------------------------------------------------ requests as sent


def test_headers_are_made_afresh_for_every_attempt() -> None:
    nonces = iter(range(100))
    script = Script(503, 200)
    http = client(script, headers=lambda: {"Nonce": str(next(nonces))})
    http.request("POST", "/user/get", data=b'{"a":1}')
    assert [r.headers["Nonce"] for r in script.requests] == ["0", "1"]
    assert script.requests[1].content == b'{"a":1}'


def test_a_call_keeps_one_request_id_through_its_retries_and_failover(
    caplog: pytest.LogCaptureFixture,
) -> None:
    script = Script(503, 503, 200)
    http = client(
        script, base_urls=["https://primary.test", "https://backup.test"], request_id_header="X-Request-ID"
    )
    with caplog.at_level(logging.INFO, logger="chatroster.http"):
        http.request("POST", "/v4/user/ban", request_id="given-id")
        http.request("POST", "/v4/user/ban")
    sent = [r.headers["X-Request-ID"] for r in script.requests]
    assert sent[:3] == ["given-id"] * 3  # the same call on both hosts: the vendor can match them
    assert len(sent[3]) == 36 and sent[3].count("-") == 4  # a new call: a fresh UUID4
    attempts = [record.getMessage() for record in caplog.records if "->" in record.getMessage()]
    assert all(line.endswith(f"request id {i})") for line, i in zip(attempts, sent, strict=True))


def test_without_a_request_id_header_none_is_sent() -> None:
    script = Script(200)
    client(script).request("POST", "/users", request_id="ignored")
    assert not any(name.lower() == "x-request-id" for name in script.requests[0].headers)


def test_sends_json_bodies_and_query_parameters() -> None:
    script = Script(200)
    http = client(script)
    http.request("DELETE", "/users", json={"uidsToDeactivate": ["a"]}, params={"x": "1"})
    request = script.requests[0]
    assert request.method == "DELETE"
    assert request.url.params["x"] == "1"
    assert request.content == b'{"uidsToDeactivate":["a"]}'


# --------------------------------------------------------------------------- redaction


def test_redact_replaces_secrets_and_their_url_encoded_form() -> None:
    text = f"key={SECRET} url=/x?k=ab%2Fcdef sig ab/cdef"
    assert redact(text, [SECRET, "ab/cdef"]) == "key=*** url=/x?k=*** sig ***"
    assert redact("nothing here", ["", SECRET]) == "nothing here"


def test_values_too_short_to_be_credentials_do_not_garble_messages() -> None:
    assert redact("users list", ["s"]) == "users list"


def test_errors_and_log_lines_never_show_a_secret(caplog: pytest.LogCaptureFixture) -> None:
    signature = "f00dfeedcafe"
    dropped = httpx.RemoteProtocolError(f"peer closed; sent apikey {SECRET} sig {signature}")
    http = client(Script(dropped), max_retries=2, headers=lambda: {"Signature": signature})
    caplog.set_level(logging.DEBUG, logger="chatroster.http")
    with pytest.raises(TransportError) as caught:
        http.request("GET", f"/users?echo={SECRET}")
    shown = str(caught.value) + "\n".join(record.getMessage() for record in caplog.records)
    assert caplog.records, "retries are logged"
    assert SECRET not in shown and signature not in shown
    assert "***" in shown


# ------------------------------------------------------------------------ rate limiter


def test_rate_limiter_lets_a_burst_through_then_paces() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    limiter = RateLimiter(120, per=60, burst=2, clock=lambda: now[0], sleep=sleep)
    for _ in range(6):
        limiter.acquire()
    # 2 per second after a burst of 2: four more take two seconds.
    assert slept == pytest.approx([0.5, 0.5, 0.5, 0.5])


def test_rate_limiter_is_shared_safely_between_threads() -> None:
    # The clock stands still, so each caller's wait is set by the tokens taken before
    # it: 31 callers at 100/s with one token up front must wait 0, 0.01, ... 0.30 s,
    # one slot each, whatever order the threads run in. A lost update would show as
    # two callers with the same wait.
    slept: list[float] = []
    lock = threading.Lock()

    def sleep(seconds: float) -> None:
        with lock:
            slept.append(seconds)

    limiter = RateLimiter(100, per=1.0, burst=1, clock=lambda: 0.0, sleep=sleep)
    run_concurrently(lambda _: limiter.acquire(), list(range(31)), concurrency=6)
    assert sorted(slept) == pytest.approx([n / 100 for n in range(1, 31)])


def test_client_takes_a_token_of_the_request_rate_class() -> None:
    taken: list[str] = []

    class Recording(RateLimiter):
        def __init__(self, name: str) -> None:
            super().__init__(1000)
            self.name = name

        def acquire(self) -> None:
            taken.append(self.name)

    limiters = {"core": Recording("core"), "default": Recording("default")}
    http = client(Script(200), limiters=limiters)
    http.request("POST", "/users", rate_class="core")
    http.request("GET", "/users", rate_class="standard")
    assert taken == ["core", "default"]


# ----------------------------------------------------------------------- concurrency


def test_run_concurrently_keeps_order_and_reports_each_failure() -> None:
    def work(n: int) -> int:
        if n % 3 == 0:
            raise ValueError(f"bad {n}")
        time.sleep(0.001 * (10 - n))
        return n * 10

    results = run_concurrently(work, list(range(10)), concurrency=4)
    assert [item for item, _ in results] == list(range(10))
    assert results[1] == (1, 10)
    assert isinstance(results[3][1], ValueError) and str(results[3][1]) == "bad 3"


def test_run_concurrently_runs_up_to_the_limit_at_once_and_never_more() -> None:
    # Each item waits at a barrier for two others, so the pool must run three at once
    # to get through at all; if it ran a fourth, the count would show it.
    limit = 3
    lock = threading.Lock()
    running = [0]
    peak = [0]
    barrier = threading.Barrier(limit, timeout=60)

    def work(_: int) -> None:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        try:
            barrier.wait()
        finally:
            with lock:
                running[0] -= 1

    results = run_concurrently(work, list(range(limit * 4)), concurrency=limit)
    assert [outcome for _, outcome in results] == [None] * (limit * 4)
    assert peak[0] == limit
