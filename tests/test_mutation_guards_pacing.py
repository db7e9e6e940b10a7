"""Pacing rules that the transport tests left open, found by mutation testing
(docs/mutation.md): the defaults of the token bucket, which rates it refuses, and how a
server's wait is read at its edges (zero, in the past, a date without a zone, the
boundary between a reset epoch and a number of seconds).

Clocks are injected and sleeps recorded, as in test_transport.py.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import httpx
import pytest

from chatroster.http import RateLimiter
from chatroster.http.pacing import SERVER_WAIT_CAP, reset_seconds, retry_after_seconds, server_wait


class Timeline:
    """A clock that only sleeping moves; every sleep is recorded."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def paced(rate: float, calls: int, **options: float) -> list[float]:
    timeline = Timeline()
    limiter = RateLimiter(rate, clock=timeline.clock, sleep=timeline.sleep, **options)  # type: ignore[arg-type]
    for _ in range(calls):
        limiter.acquire()
    return timeline.sleeps


def test_a_rate_is_per_second_unless_said_otherwise() -> None:
    # 4 per second, a burst of 4: the fifth and sixth wait a quarter second each.
    assert paced(4, 6) == pytest.approx([0.25, 0.25])


def test_a_slow_rate_still_lets_one_request_through_at_once() -> None:
    # One request every 2 s: the burst is one request, not two.
    assert paced(0.5, 3) == pytest.approx([2.0, 2.0])


def test_a_fast_rate_bursts_one_seconds_worth() -> None:
    assert paced(3.9, 4) == pytest.approx([1 / 3.9])  # int(3.9) = 3 up front


@pytest.mark.parametrize(("rate", "per"), [(0, 1.0), (-1, 1.0), (1, 0.0), (1, -1.0)])
def test_a_rate_limit_needs_a_positive_rate_and_period(rate: float, per: float) -> None:
    with pytest.raises(ValueError) as caught:
        RateLimiter(rate, per)
    assert str(caught.value) == "a rate limit needs a positive rate and period"


def test_a_limiter_with_tokens_left_never_sleeps() -> None:
    assert paced(10, 10) == []


# ------------------------------------------------------------------ server waits


def answer(status: int, **headers: str) -> httpx.Response:
    return httpx.Response(status, headers=headers)


def test_a_retry_after_of_zero_means_retry_at_once() -> None:
    assert server_wait(answer(429, **{"Retry-After": "0"})) == 0.0


def test_a_retry_after_in_the_past_is_no_wait_rather_than_a_negative_one() -> None:
    assert server_wait(answer(503, **{"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})) == 0.0


def test_a_wait_just_under_the_cap_is_kept() -> None:
    assert server_wait(answer(429, **{"Retry-After": str(SERVER_WAIT_CAP - 1)})) == SERVER_WAIT_CAP - 1


def test_a_reset_header_counts_only_on_a_429() -> None:
    assert server_wait(answer(503, **{"X-RateLimit-Reset": "5"})) is None
    assert server_wait(answer(429, **{"X-RateLimit-Reset": "5"})) == 5.0
    assert server_wait(answer(429, **{"X-Rate-Limit-Reset": "6"})) == 6.0


def test_an_answer_that_names_no_wait_has_none() -> None:
    assert server_wait(answer(429)) is None
    assert server_wait(answer(429, **{"Retry-After": "soon"})) is None


def test_retry_after_as_seconds_and_as_a_date_from_a_given_now() -> None:
    # 07:28:00 GMT on 21 Oct 2026 is 1792567680 seconds after the epoch.
    assert retry_after_seconds(" 12.5 ", now=0.0) == 12.5
    assert retry_after_seconds("Wed, 21 Oct 2026 07:28:00 GMT", now=1792567670.0) == 10.0
    assert retry_after_seconds("", now=0.0) is None
    assert retry_after_seconds(None) is None


@pytest.fixture
def singapore_time() -> Iterator[None]:
    """The machine's local time zone is UTC+8, so that a zone-less date read as local
    time would be eight hours off."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "Asia/Singapore"
    time.tzset()
    try:
        assert time.timezone == -8 * 3600
        yield
    finally:
        if before is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = before
        time.tzset()


def test_an_http_date_without_a_zone_is_read_as_utc(singapore_time: None) -> None:
    # "-0000" is RFC 5322's "zone unknown": Python gives a naive datetime for it.
    assert retry_after_seconds("Wed, 21 Oct 2026 07:28:00 -0000", now=1792567670.0) == 10.0


def test_a_reset_epoch_is_counted_from_now() -> None:
    assert reset_seconds("1792567690", now=1792567670.0) == 20.0
    assert reset_seconds(" 1000000000 ", now=999999990.0) == 10.0  # 1e9 is already an epoch


def test_a_small_reset_number_is_seconds_to_wait() -> None:
    assert reset_seconds("999999999.5", now=0.0) == 999999999.5
    assert reset_seconds("30", now=1792567670.0) == 30.0


def test_a_reset_header_that_is_no_number_is_ignored() -> None:
    assert reset_seconds("tomorrow") is None
    assert reset_seconds("") is None
    assert reset_seconds(None) is None
