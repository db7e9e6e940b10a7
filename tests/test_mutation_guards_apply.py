"""The applier's bookkeeping, found open by mutation testing (docs/mutation.md): what it
says it applied when stopped, how it counts progress and failures, and how Ctrl-C and
SIGTERM are caught and given back. The Ctrl-C tests in test_apply_interrupt.py run the
CLI as a subprocess, which mutation testing cannot see into.

Changes are written to a real SQLite file through the local provider, except where a
provider has to fail on cue: there a scripted provider stands in for the platform (a
fake of the provider only; the applier under test is real).
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from chatroster.apply import Stop, apply, interruptible
from chatroster.changes import Action, Change, ordered
from chatroster.errors import ApplyError, Interrupted, PartialFailure, ProviderError
from chatroster.http import run_concurrently
from chatroster.model import ProviderConfig, State
from chatroster.providers import open_provider
from chatroster.providers.base import Provider, Scope
from chatroster.providers.local import LocalProvider


def local(tmp_path: Path, batch_size: int) -> LocalProvider:
    config = ProviderConfig(type="local", settings={"path": str(tmp_path / "app.db")})
    provider = open_provider(config, writable=True)
    assert isinstance(provider, LocalProvider)
    provider.batch_size = batch_size  # small batches, so that a stop falls between two
    return provider


def creates(*uids: str) -> list[Change]:
    return [Change(Action.CREATE_USER, uid, after={"name": uid.title()}) for uid in uids]


def test_a_stop_between_batches_says_what_was_applied_per_action(tmp_path: Path) -> None:
    changes = ordered(
        [*creates("a", "b", "c"), Change(Action.ADD_BLOCK, "a", target="b", after={"blocked": True})]
    )
    stop = Stop()
    settled: list[tuple[int, int]] = []

    def progress(done: int, total: int) -> None:
        settled.append((done, total))
        stop.request()  # after the first batch, as a Ctrl-C would

    with local(tmp_path, batch_size=2) as provider:
        with pytest.raises(Interrupted) as caught:
            apply(changes, provider, progress=progress, stop=stop)
        assert set(provider.store.all_users()) == {"a", "b"}
    stopped = caught.value
    assert (stopped.done, stopped.total, stopped.in_flight, stopped.failed) == (2, 4, 0, 0)
    assert stopped.detail == "create_user 2 of 3, add_block 0 of 1"
    assert settled == [(2, 4)]


def test_an_apply_not_stopped_settles_every_batch_and_reports_progress(tmp_path: Path) -> None:
    settled: list[tuple[int, int]] = []
    with local(tmp_path, batch_size=2) as provider:
        result = apply(
            ordered(creates("a", "b", "c")), provider, progress=lambda *n: settled.append(n), stop=Stop()
        )
        assert set(provider.store.all_users()) == {"a", "b", "c"}
    assert result.done == 3 and result.failures == []
    assert result.report() == "create_user 3 of 3"
    assert settled == [(2, 3), (3, 3)]


def test_a_stop_is_not_requested_until_asked() -> None:
    stop = Stop()
    assert stop.requested is False
    stop.request()
    assert stop.requested is True


class Scripted(Provider):
    """Fails the way it is told: a stand-in for a platform that refuses on cue."""

    type = "scripted"
    batch_size = 2

    def __init__(
        self,
        error: BaseException | None = None,
        *,
        fail: dict[str, str] | None = None,
        one_by_one: bool = False,
    ) -> None:
        self.error = error
        self.fail = fail or {}
        self.one_by_one = one_by_one
        self.batches: list[list[str]] = []

    def identity(self) -> dict[str, str]:
        return {"type": self.type}

    def read(self, scope: Scope) -> State:
        return State(users={})

    def create_users(self, changes: Sequence[Change]) -> None:
        self.batches.append([change.uid for change in changes])
        if self.one_by_one:  # as the vendor providers write: one call per change
            run_concurrently(lambda change: None, list(changes), concurrency=1)
        if self.error is not None:
            raise self.error
        failed = {change.key: self.fail[change.key] for change in changes if change.key in self.fail}
        if failed:
            raise PartialFailure(failed)


def test_a_partial_failure_fails_only_the_changes_it_names_and_stops_the_run() -> None:
    provider = Scripted(fail={"create_user:b": "taken", "create_user:a": "bad name"})
    with pytest.raises(ApplyError) as caught:
        apply(ordered(creates("a", "b", "c", "d")), provider)
    assert provider.batches == [["a", "b"]]  # not the next batch
    assert caught.value.failures == (("create_user:a", "bad name"), ("create_user:b", "taken"))
    assert caught.value.done == 0


def test_continue_on_error_goes_on_and_counts_what_was_applied_and_what_failed() -> None:
    provider = Scripted(fail={"create_user:a": "bad name"})
    settled: list[tuple[int, int]] = []
    with pytest.raises(ApplyError) as caught:
        apply(
            ordered(creates("a", "b", "c")),
            provider,
            continue_on_error=True,
            progress=lambda *n: settled.append(n),
        )
    assert provider.batches == [["a", "b"], ["c"]]
    assert caught.value.done == 2
    assert caught.value.failures == (("create_user:a", "bad name"),)
    assert settled == [(2, 3), (3, 3)]


def test_a_failed_batch_names_every_change_of_it_with_the_error() -> None:
    provider = Scripted(ProviderError("HTTP 503"))
    with pytest.raises(ApplyError) as caught:
        apply(ordered(creates("a", "b")), provider)
    assert caught.value.failures == (("create_user:a", "HTTP 503"), ("create_user:b", "HTTP 503"))


def test_a_second_ctrl_c_during_a_batch_counts_that_batch_as_in_flight() -> None:
    provider = Scripted(KeyboardInterrupt())
    with pytest.raises(Interrupted) as caught:
        apply(ordered(creates("a", "b", "c")), provider)
    stopped = caught.value
    assert (stopped.done, stopped.total, stopped.in_flight, stopped.failed) == (0, 3, 2, 0)
    assert stopped.detail == "create_user 0 of 3"


def test_progress_moves_per_change_within_a_batch_written_one_by_one() -> None:
    settled: list[tuple[int, int]] = []
    apply(ordered(creates("a", "b", "c")), Scripted(one_by_one=True), progress=lambda *n: settled.append(n))
    # In the first batch (a, b): after a, 1; after b still 1, never the whole batch
    # before it is settled; then 2 when the batch is. The second batch (c) has one change.
    assert settled == [(1, 3), (1, 3), (2, 3), (3, 3)]


def test_without_a_progress_callback_nothing_listens_to_the_changes() -> None:
    from chatroster.http import concurrency

    heard: list[int] = []
    provider = Scripted(one_by_one=True)
    provider.create_users = lambda changes: heard.append(len(concurrency._item_listeners))  # type: ignore[method-assign]
    apply(ordered(creates("a", "b")), provider)
    assert heard == [0]


# ----------------------------------------------------------------- signals


def test_the_first_ctrl_c_asks_to_stop_and_says_so_the_second_stops_at_once() -> None:
    notes: list[str] = []
    with interruptible(notes.append) as stop:
        signal.raise_signal(signal.SIGINT)
        assert stop.requested is True
        assert notes == [
            "interrupted: letting the changes in flight finish, then stopping "
            "(press Ctrl-C again to stop at once)"
        ]
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)


def test_sigterm_is_caught_like_ctrl_c() -> None:
    with interruptible(lambda note: None) as stop:
        signal.raise_signal(signal.SIGTERM)
        assert stop.requested is True


def test_the_previous_signal_handlers_are_given_back() -> None:
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    with interruptible(lambda note: None):
        assert signal.getsignal(signal.SIGINT) is not before[signal.SIGINT]
        assert signal.getsignal(signal.SIGTERM) is not before[signal.SIGTERM]
    assert {sig: signal.getsignal(sig) for sig in before} == before


def test_outside_the_main_thread_no_handler_is_installed() -> None:
    seen: list[object] = []

    def worker() -> None:
        with interruptible(lambda note: None) as stop:
            seen.append(signal.getsignal(signal.SIGINT))
            seen.append(stop.requested)

    before = signal.getsignal(signal.SIGINT)
    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen == [before, False]


def test_progress_counts_failed_changes_as_settled() -> None:
    settled: list[tuple[int, int]] = []
    provider = Scripted(fail={"create_user:a": "bad name"}, one_by_one=True)
    with pytest.raises(ApplyError):
        apply(
            ordered(creates("a", "b", "c", "d")),
            provider,
            continue_on_error=True,
            progress=lambda *n: settled.append(n),
        )
    # First batch (a fails, b is made): 1, 1 within it, then 2 settled; the second
    # batch starts from those 2.
    assert settled == [(1, 4), (1, 4), (2, 4), (3, 4), (3, 4), (4, 4)]


def test_each_batch_is_logged_with_its_outcome(caplog: pytest.LogCaptureFixture) -> None:
    provider = Scripted(fail={"create_user:a": "bad name"})
    with caplog.at_level(logging.INFO, logger="chatroster.apply"), pytest.raises(ApplyError):
        apply(ordered(creates("a", "b", "c")), provider, continue_on_error=True)
    assert [record.getMessage() for record in caplog.records] == [
        "create_user: batch of 2: 1 done, 1 failed",
        "create_user: batch of 1: 1 done",
    ]


def test_a_stop_after_a_failed_batch_reports_the_failure() -> None:
    stop = Stop()
    provider = Scripted(fail={"create_user:a": "bad name"})
    with pytest.raises(Interrupted) as caught:
        apply(
            ordered(creates("a", "b", "c")),
            provider,
            continue_on_error=True,
            stop=stop,
            progress=lambda *n: stop.request(),
        )
    assert (caught.value.done, caught.value.failed) == (1, 1)


def test_each_change_is_recorded_as_its_batch_settles_with_why_it_failed() -> None:
    provider = Scripted(fail={"create_user:b": "taken"})
    recorded: list[tuple[str, str | None]] = []
    with pytest.raises(ApplyError):
        apply(
            ordered(creates("a", "b", "c")),
            provider,
            continue_on_error=True,
            record=lambda change, why: recorded.append((change.key, why)),
        )
    assert recorded == [("create_user:a", None), ("create_user:b", "taken"), ("create_user:c", None)]
