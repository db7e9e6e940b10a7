"""HttpClient details the transport tests left open, found by mutation testing
(docs/mutation.md): its defaults, the log line of each attempt, how a server's pause is
kept per rate class, the order of failover, and how raw and form bodies are sent.

As in test_transport.py, the network is `httpx.MockTransport` (the vendor's side is what
cannot be real here), the clock is injected and sleeps are recorded.
"""

from __future__ import annotations

import logging

import httpx
import pytest
from test_transport import SECRET, FakeTime, Script, client, throttled, with_draws

from chatroster.http import HttpClient, TransportError
from chatroster.http.client import body_excerpt, request_target

SIGNATURE = "sig0123456789abcdef"


class StillClock:
    """A clock that stands where it is put; sleeps are recorded and move nothing."""

    def __init__(self, now: float) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)


# ------------------------------------------------------------------ defaults


def test_the_defaults_of_a_client() -> None:
    http = HttpClient(["https://primary.test/v3/", "https://backup.test/"], label="x")
    assert http.base_urls == ["https://primary.test/v3", "https://backup.test"]
    assert (http.max_retries, http.backoff_base, http.backoff_cap) == (6, 0.25, 30.0)
    assert http._client.timeout == httpx.Timeout(10.0)
    assert http._client.follow_redirects is False
    http.close()


def test_a_client_needs_a_base_url() -> None:
    with pytest.raises(ValueError) as caught:
        HttpClient([], label="x")
    assert str(caught.value) == "HttpClient needs at least one base URL"


def test_the_first_request_goes_to_the_primary_host() -> None:
    script = Script(200)
    http = client(script, base_urls=["https://a.test", "https://b.test"])
    http.request("GET", "/users")
    assert [r.url.host for r in script.requests] == ["a.test"]


def test_a_redirect_is_returned_not_followed() -> None:
    script = Script(httpx.Response(302, headers={"Location": "https://elsewhere.test/"}))
    assert client(script).request("GET", "/users").status_code == 302
    assert len(script.requests) == 1


# ------------------------------------------------------------- descriptions


def test_a_request_target_has_no_query_or_fragment() -> None:
    request = httpx.Request("GET", "https://a.test/v3/users?page=2#top")
    assert request_target(httpx.Response(200, request=request), "fallback") == "GET https://a.test/v3/users"
    assert request_target(httpx.Response(200), "fallback") == "fallback"


def test_a_body_excerpt_is_one_line_of_at_most_two_hundred_characters() -> None:
    assert body_excerpt(httpx.Response(500, text="line one\n\n  line two\t")) == "HTTP 500: line one line two"
    assert body_excerpt(httpx.Response(500, text="x" * 200)) == "HTTP 500: " + "x" * 200
    assert body_excerpt(httpx.Response(500, text="x" * 201)) == "HTTP 500: " + "x" * 200 + "..."
    assert body_excerpt(httpx.Response(502)) == "HTTP 502"


def test_redacted_takes_this_clients_secrets_out() -> None:
    assert client(Script(200)).redacted(f"the key is {SECRET}") == "the key is ***"


# ------------------------------------------------------------------ log lines


def timed(answers: Script, fake: FakeTime, took: float) -> Script:
    """Each request takes ``took`` seconds on the fake clock."""

    def handler(request: httpx.Request) -> httpx.Response:
        fake.now += took
        return answers(request)

    handler.requests = answers.requests  # type: ignore[attr-defined]
    return handler  # type: ignore[return-value]


def signed() -> dict[str, str]:
    return {"X-Signature": SIGNATURE, "Accept": "application/json"}


def test_each_attempt_is_logged_with_its_outcome_attempt_and_time(caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeTime()
    http = client(timed(Script(503, 200), fake, 0.25), clock=fake.clock, sleep=fake.sleep, headers=signed)
    with_draws(http, 1.0)
    with caplog.at_level(logging.INFO, logger="chatroster.http"):
        http.request("GET", f"/users?sig={SIGNATURE}&x=1?y")
    assert [record.getMessage() for record in caplog.records] == [
        "[test] GET /users -> 503 (attempt 1, 250 ms)",
        '[test] GET https://primary.test/v3/users?sig=***&x=1?y: HTTP 503: {"status":503}; '
        "retry 1 of 4 in 0.25s",
        "[test] GET /users -> 200 (attempt 2, 250 ms)",
    ]


def test_the_host_is_logged_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeTime()
    http = client(timed(Script(200), fake, 0.004), clock=fake.clock, sleep=fake.sleep)
    with caplog.at_level(logging.DEBUG, logger="chatroster.http"):
        http.request("POST", "/users")
    assert [record.getMessage() for record in caplog.records] == [
        "[test] POST https://primary.test/v3/users -> 200 (attempt 1, 4 ms)"
    ]


def test_a_failed_connection_is_logged_by_its_kind(caplog: pytest.LogCaptureFixture) -> None:
    http = client(Script(httpx.ConnectTimeout("slow"), 200))
    with_draws(http, 0.0)
    with caplog.at_level(logging.INFO, logger="chatroster.http"):
        http.request("GET", "/users")
    attempts = [record.getMessage() for record in caplog.records if record.levelno == logging.INFO]
    assert [line.split(" (")[0] for line in attempts] == [
        "[test] GET /users -> ConnectTimeout",
        "[test] GET /users -> 200",
    ]
    assert "(attempt 1, " in attempts[0] and "(attempt 2, " in attempts[1]


def test_a_signature_in_a_path_never_reaches_a_log_line(caplog: pytest.LogCaptureFixture) -> None:
    http = client(Script(200), headers=signed)
    with caplog.at_level(logging.DEBUG, logger="chatroster.http"):
        http.request("GET", f"/users/{SIGNATURE}")
    assert SIGNATURE not in caplog.text
    assert "/users/*** -> 200" in caplog.text


def test_nothing_is_logged_below_info(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="chatroster.http"):
        client(Script(200)).request("GET", "/users")
    assert caplog.records == []


def test_an_error_retrying_cannot_fix_names_the_call_without_its_signature(
    caplog: pytest.LogCaptureFixture,
) -> None:
    http = client(Script(httpx.UnsupportedProtocol("no such scheme")), headers=signed)
    with caplog.at_level(logging.INFO, logger="chatroster.http"), pytest.raises(TransportError) as caught:
        http.request("GET", f"/users?sig={SIGNATURE}")
    assert str(caught.value) == (
        "[test] GET https://primary.test/v3/users?sig=*** failed: UnsupportedProtocol: no such scheme"
    )
    assert caught.value.attempts == 1
    assert caplog.records[0].getMessage().startswith("[test] GET /users -> UnsupportedProtocol (attempt 1,")


# ------------------------------------------------------------- server pauses


def test_a_server_wait_is_slept_exactly_with_the_jitter_drawn_from_zero() -> None:
    fake = FakeTime()
    http = client(Script(throttled(**{"Retry-After": "5"}), 200), clock=fake.clock, sleep=fake.sleep)
    draws = with_draws(http, 0.0)
    http.request("GET", "/users")
    assert fake.sleeps == [5.0]  # the pause is over when the retry is paced: no second sleep
    assert draws.asked == [(0, 0.25)]


def test_what_is_left_of_a_pause_is_slept_before_the_next_request() -> None:
    fake = FakeTime()

    def early(seconds: float) -> None:  # a sleep that wakes half a second early
        fake.sleeps.append(seconds)
        fake.now += seconds - 0.5

    http = client(Script(throttled(**{"Retry-After": "2"}), 200), clock=fake.clock, sleep=early)
    with_draws(http, 0.0)
    http.request("GET", "/users")
    assert fake.sleeps == [2.0, 0.5]


def test_no_pause_at_all_means_no_sleep_even_at_time_zero() -> None:
    still = StillClock(0.0)
    http = client(Script(throttled(**{"Retry-After": "0"}), 200), clock=still.clock, sleep=still.sleep)
    with_draws(http, 0.0)
    http.request("GET", "/users")
    assert still.sleeps == [0.0]  # the retry's own (zero) wait, and no pause after it


def test_a_shorter_pause_does_not_cut_a_longer_one_short() -> None:
    still = StillClock(1000.0)
    answers = Script(throttled(**{"Retry-After": "30"}), throttled(**{"Retry-After": "5"}), 200)
    http = client(answers, clock=still.clock, sleep=still.sleep)
    with_draws(http, 0.0)
    http.request("GET", "/users")
    # 30 s asked; the retry waits out the class's pause (30 s, the clock stands still);
    # 5 s asked: the pause stays at 30 s, so the last retry waits 30 s again, not 5.
    assert still.sleeps == [30.0, 30.0, 5.0, 30.0]


def test_a_pause_of_the_default_class_holds_requests_that_name_it() -> None:
    still = StillClock(1000.0)
    http = client(Script(throttled(**{"Retry-After": "10"}), 200), clock=still.clock, sleep=still.sleep)
    with_draws(http, 0.0)
    http.request("GET", "/users")
    http.request("GET", "/users", rate_class="default")
    http.request("GET", "/users", rate_class="core")
    assert still.sleeps == [10.0, 10.0, 10.0]  # the last, of another class, is not held


# ------------------------------------------------------------------ failover


def test_failover_goes_through_the_hosts_in_order_and_counts_each_move(
    caplog: pytest.LogCaptureFixture,
) -> None:
    script = Script(500, 500, 200)
    http = client(script, base_urls=["https://a.test", "https://b.test", "https://c.test"])
    with_draws(http, 0.0)
    with caplog.at_level(logging.WARNING, logger="chatroster.http"):
        http.request("GET", "/users")
    assert [r.url.host for r in script.requests] == ["a.test", "b.test", "c.test"]
    assert http.counters["failovers"] == 2
    assert "[test] https://a.test failing; switching to https://b.test" in caplog.text


# ------------------------------------------------------------------- bodies


def test_a_raw_body_is_sent_as_it_is_with_its_query() -> None:
    script = Script(200)
    client(script).request("POST", "/users", data=b'{"signed": 1}', params={"page": "2"})
    (sent,) = script.requests
    assert sent.content == b'{"signed": 1}'
    assert sent.url.params["page"] == "2"


def test_a_mapping_body_is_sent_as_a_form() -> None:
    script = Script(200)
    client(script).request("POST", "/users", data={"userId": "alice"})
    (sent,) = script.requests
    assert sent.content == b"userId=alice"
    assert sent.headers["Content-Type"] == "application/x-www-form-urlencoded"


def test_only_slashes_are_trimmed_from_a_base_url() -> None:
    http = HttpClient(["https://a.test/apiX/"], label="x")
    assert http.base_urls == ["https://a.test/apiX"]
    http.close()


def test_a_json_request_carries_the_headers() -> None:
    script = Script(200)
    client(script, headers=signed).request("POST", "/users", json={"uid": "alice"})
    (sent,) = script.requests
    assert sent.headers["X-Signature"] == SIGNATURE
    assert sent.content == b'{"uid":"alice"}'


def test_a_slow_attempt_is_logged_in_whole_milliseconds(caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeTime()
    http = client(timed(Script(200), fake, 2.0), clock=fake.clock, sleep=fake.sleep)
    with caplog.at_level(logging.INFO, logger="chatroster.http"):
        http.request("GET", "/users")
    assert caplog.records[0].getMessage() == "[test] GET /users -> 200 (attempt 1, 2000 ms)"
