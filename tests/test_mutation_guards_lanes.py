"""The lanes executor's bookkeeping (`chatroster.apply._Lanes`), found open by mutation
testing (docs/mutation.md): what it records per change, the progress it reports within
and between batches, why a change it did not attempt was not, and how a failure or a
rejected credential in a lane reaches the caller.

The platform is test_schedule.py's in-memory `Platform` (a platform that refuses what a
real one refuses, not a stand-in for chatroster's code). Each test runs one lane at a
time where it checks an order, so that nothing depends on which thread runs first.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Sequence

import pytest
from test_schedule import Platform, block, create, update

from chatroster.apply import Stop, apply
from chatroster.changes import Action, Change, ordered
from chatroster.errors import ApplyError, AuthError, Interrupted
from chatroster.http import run_concurrently


def expire(uid: str) -> Change:
    return Change(Action.EXPIRE_TOKENS, uid)


class Expiring(Platform):
    """Tokens expire only for a user that exists."""

    def expire_tokens(self, changes: Sequence[Change]) -> None:
        self._call(Action.EXPIRE_TOKENS, changes)
        for change in changes:
            assert self._exists(change.uid), f"{change.key}: no such user"


def test_each_change_is_recorded_once_as_it_settles_with_why_it_was_not_applied() -> None:
    plan = ordered(
        [create("bad"), create("good"), update("bad", "Bad"), expire("bad"), update("good", "Good")]
    )
    platform = Expiring(refuse=["bad"])
    recorded: list[tuple[str, str | None]] = []
    with pytest.raises(ApplyError) as raised:
        apply(plan, platform, continue_on_error=True, record=lambda c, why: recorded.append((c.key, why)))
    # The tokens of bad wait on its creation and its update: the first cause is named.
    not_attempted = "not attempted: create_user:bad failed"
    assert sorted(recorded, key=lambda item: item[0]) == [
        ("create_user:bad", "refused by the platform"),
        ("create_user:good", None),
        ("expire_tokens:bad", not_attempted),
        ("update_user:bad", not_attempted),
        ("update_user:good", None),
    ]
    assert dict(raised.value.failures) == {
        "create_user:bad": "refused by the platform",
        "update_user:bad": not_attempted,
        "expire_tokens:bad": not_attempted,
    }
    assert raised.value.done == 2
    assert platform.users["good"]["name"] == "Good"
    assert [action for action, _ in platform.calls] == [Action.CREATE_USER, Action.UPDATE_USER]


def test_a_batch_s_failures_are_listed_in_key_order_and_counted_per_action() -> None:
    plan = ordered([create("c"), create("a"), create("b")])
    platform = Platform(refuse=["c", "a"])
    with pytest.raises(ApplyError) as raised:
        apply(plan, platform)
    assert list(raised.value.failures) == [
        ("create_user:a", "refused by the platform"),
        ("create_user:c", "refused by the platform"),
    ]
    assert raised.value.done == 1 and sorted(platform.users) == ["b"]


def test_progress_after_each_batch_of_one_lane() -> None:
    reported: list[tuple[int, int]] = []
    platform = Platform(batch_size=2)
    result = apply(
        ordered([create(f"u{i}") for i in range(5)]), platform, progress=lambda *n: reported.append(n)
    )
    assert reported == [(2, 5), (4, 5), (5, 5)]
    assert result.done == 5 and result.in_flight == 0
    assert result.report() == "create_user 5 of 5"


class OneByOne(Platform):
    """Creates users one at a time through `run_concurrently`, as the vendor providers
    write change by change, so that apply hears of each as it finishes."""

    def create_users(self, changes: Sequence[Change]) -> None:
        self._call(Action.CREATE_USER, changes)

        def one(change: Change) -> None:
            self.users[change.uid] = {"name": change.uid, "active": True}

        run_concurrently(one, changes, 1)


def test_progress_moves_per_change_within_a_batch_but_never_to_the_end_before_it_settles() -> None:
    reported: list[tuple[int, int]] = []
    platform = OneByOne(batch_size=3)
    plan = ordered([create("a"), create("b"), create("c")])
    result = apply(plan, platform, progress=lambda *n: reported.append(n))
    assert reported == [(1, 3), (2, 3), (2, 3), (3, 3)]
    assert result.done == 3


def test_changes_finished_outside_the_apply_are_not_counted() -> None:
    reported: list[tuple[int, int]] = []

    class Elsewhere(Platform):
        def create_users(self, changes: Sequence[Change]) -> None:
            super().create_users(changes)
            # Items that are not changes of the batch in flight: another apply's, or none.
            run_concurrently(lambda item: item, [create("other"), "not a change"], 1)

    apply(ordered([create("a"), create("b")]), Elsewhere(), progress=lambda *n: reported.append(n))
    assert reported == [(2, 2)]


def test_without_progress_a_change_finished_in_a_batch_is_ignored() -> None:
    # Nothing to report to: the executor neither fails nor counts.
    result = apply(ordered([create("a"), create("b")]), OneByOne())
    assert result.done == 2 and result.in_flight == 0


def test_rejected_credentials_in_a_lane_stop_the_apply_with_that_error() -> None:
    class Rejecting(Platform):
        def update_users(self, changes: Sequence[Change]) -> None:
            self._call(Action.UPDATE_USER, changes)
            raise AuthError("the API key was rejected")

    platform = Rejecting(["a", "b"], batch_size=1)
    with pytest.raises(AuthError, match="the API key was rejected"):
        apply(ordered([update("a", "A"), update("b", "B")]), platform, continue_on_error=True)
    # No batch of that lane starts after it: every later call would fail the same way.
    assert [keys for _, keys in platform.calls] == [("update_user:a",)]


def test_a_failure_without_continue_on_error_reports_what_was_done() -> None:
    plan = ordered([create("a"), create("bad"), create("c")])
    platform = Platform(refuse=["bad"], batch_size=1)
    with pytest.raises(ApplyError) as raised:
        apply(plan, platform)
    assert raised.value.done == 1 and dict(raised.value.failures) == {
        "create_user:bad": "refused by the platform"
    }
    assert sorted(platform.users) == ["a"]


def test_a_stop_during_the_last_batch_lets_the_apply_finish() -> None:
    stop = Stop()

    class Stopping(Platform):
        def create_users(self, changes: Sequence[Change]) -> None:
            super().create_users(changes)
            stop.request()

    result = apply(ordered([create("a"), create("b")]), Stopping(), stop=stop)
    assert result.done == 2 and result.in_flight == 0


def test_a_stop_reports_no_change_in_flight_once_the_batches_settled() -> None:
    stop = Stop()

    class Stopping(Platform):
        def create_users(self, changes: Sequence[Change]) -> None:
            super().create_users(changes)
            stop.request()

    platform = Stopping(["x"], batch_size=1)
    with pytest.raises(Interrupted) as raised:
        apply(ordered([create("a"), create("b"), block("x", "a")]), platform, stop=stop)
    stopped = raised.value
    assert (stopped.done, stopped.total, stopped.in_flight, stopped.failed) == (1, 3, 0, 0)
    assert stopped.detail == "create_user 1 of 2, add_block 0 of 1"


def test_a_later_segment_runs_after_the_one_before_it_settled() -> None:
    # Friends are not classified: they run after every user change before them.
    class Friendly(Platform):
        def add_friends(self, changes: Sequence[Change]) -> None:
            self._call(Action.ADD_FRIEND, changes)
            for change in changes:
                assert change.target is not None
                assert self._exists(change.uid) and self._exists(change.target)

    plan = ordered([create("a"), create("b"), Change(Action.ADD_FRIEND, "a", target="b"), update("b", "B")])
    platform = Friendly(batch_size=1)
    records: list[str] = []
    result = apply(plan, platform, record=lambda c, why: records.append(c.key))
    assert result.done == 4 and records[-1] == "add_friend:a:b"
    assert platform.calls[-1] == (Action.ADD_FRIEND, ("add_friend:a:b",))


def test_a_change_opened_by_a_gate_is_started_even_when_an_earlier_waiter_still_waits() -> None:
    # a's creation opens ("exists", a) for two waiters: a's block of b, which still waits
    # for b (created in the next batch), and a's whitelist mode, which waits for nothing
    # else and must start.
    class Whitelisting(Platform):
        def set_whitelist_modes(self, changes: Sequence[Change]) -> None:
            self._call(Action.SET_WHITELIST_MODE, changes)
            for change in changes:
                assert self._exists(change.uid), f"{change.key}: no such user"

    mode = Change(
        Action.SET_WHITELIST_MODE, "a", before={"whitelist_mode": False}, after={"whitelist_mode": True}
    )
    plan = ordered([create("a"), create("b"), block("a", "b"), mode])
    platform = Whitelisting(batch_size=1)
    result = apply(plan, platform)
    assert result.done == 4 and not result.failures
    assert platform.blocks == {("a", "b")}
    assert (Action.SET_WHITELIST_MODE, ("set_whitelist_mode:a",)) in platform.calls


def test_a_second_ctrl_c_counts_every_lane_in_flight_as_unknown() -> None:
    # Both lanes meet at the barrier, so both are in flight when the Ctrl-C arrives
    # (delivered to the calling thread, as a terminal does); they finish after it.
    release = threading.Event()

    class Held(Platform):
        def _call(self, action: Action, changes: Sequence[Change]) -> None:
            super()._call(action, changes)
            if action is Action.UPDATE_USER:
                signal.raise_signal(signal.SIGINT)
            release.wait(timeout=30)

    platform = Held(["a", "b", "c"])
    platform.barrier = threading.Barrier(2, timeout=30)
    platform.meet = {Action.UPDATE_USER, Action.ADD_BLOCK}
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(Interrupted) as raised:
            apply(ordered([update("a", "A"), block("b", "c")]), platform)
    finally:
        release.set()
        signal.signal(signal.SIGINT, previous)
    assert (raised.value.done, raised.value.total, raised.value.in_flight) == (0, 2, 2)
