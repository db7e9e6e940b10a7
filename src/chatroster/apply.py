"""Apply: carry out a plan's changes through one dispatch table.

A provider that can write on several endpoints at once (`Provider.concurrent_writes`)
gets every action on its own lane: a lane takes the changes of its action whose
prerequisites have settled (`chatroster.schedule`), a batch at a time, so that each
endpoint works at its own rate limit while the others do. Any other provider (the local
platform: one SQLite connection) gets the batches one after the other, in plan order.
A change whose prerequisite failed is not attempted, and is reported with it.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from itertools import groupby

from .changes import ORDER, Action, Change
from .errors import ApplyError, AuthError, Interrupted, PartialFailure, ProviderError
from .providers.base import Provider
from .schedule import Gate, Segment, segments

log = logging.getLogger("chatroster.apply")

Write = Callable[[Provider, Sequence[Change]], None]
"""A provider's write for one action, given a batch of that action's changes."""

#: The one place a change becomes a provider call: typed, so that mypy checks every
#: entry against `Provider`, and complete (a test checks that it covers every action).
DISPATCH: Mapping[Action, Write] = {
    Action.CREATE_ROLE: lambda provider, batch: provider.create_roles(batch),
    Action.UPDATE_ROLE: lambda provider, batch: provider.update_roles(batch),
    Action.CREATE_USER: lambda provider, batch: provider.create_users(batch),
    Action.REACTIVATE_USER: lambda provider, batch: provider.reactivate_users(batch),
    Action.ADOPT_USER: lambda provider, batch: provider.adopt_users(batch),
    Action.UPDATE_USER: lambda provider, batch: provider.update_users(batch),
    Action.UNBAN_USER: lambda provider, batch: provider.unban_users(batch),
    Action.BAN_USER: lambda provider, batch: provider.ban_users(batch),
    Action.REMOVE_BLOCK: lambda provider, batch: provider.remove_blocks(batch),
    Action.ADD_BLOCK: lambda provider, batch: provider.add_blocks(batch),
    Action.SET_WHITELIST_MODE: lambda provider, batch: provider.set_whitelist_modes(batch),
    Action.REMOVE_WHITELIST: lambda provider, batch: provider.remove_whitelist(batch),
    Action.ADD_WHITELIST: lambda provider, batch: provider.add_whitelist(batch),
    Action.REMOVE_FRIEND: lambda provider, batch: provider.remove_friends(batch),
    Action.ADD_FRIEND: lambda provider, batch: provider.add_friends(batch),
    Action.UPDATE_FRIEND: lambda provider, batch: provider.update_friends(batch),
    Action.SET_FRIEND_PERMISSION: lambda provider, batch: provider.set_friend_permissions(batch),
    Action.EXPIRE_TOKENS: lambda provider, batch: provider.expire_tokens(batch),
    Action.DEACTIVATE_USER: lambda provider, batch: provider.deactivate_users(batch),
    Action.DELETE_USER: lambda provider, batch: provider.delete_users(batch),
    Action.DELETE_ROLE: lambda provider, batch: provider.delete_roles(batch),
}

NOT_ATTEMPTED = "not attempted: "
"""How the reason of a change whose prerequisite failed begins."""

Record = Callable[[Change, "str | None"], None]
"""Called once for each change as its batch settles: with ``None`` when it was applied,
else why not (`chatroster.record` writes these down)."""

Progress = Callable[[int, int], None]
"""Called with (changes settled, changes in all) after each batch, and within a batch
as a provider finishes the changes it writes one by one (from its worker threads)."""


@dataclass
class ApplyResult:
    """What an apply did so far: the changes done, per action, and those that failed."""

    planned: Counter[Action] = field(default_factory=Counter)
    applied: Counter[Action] = field(default_factory=Counter)
    failures: list[tuple[str, str]] = field(default_factory=list)
    in_flight: int = 0
    """Changes of a batch that was running when apply was stopped at once: unknown."""

    @property
    def done(self) -> int:
        return sum(self.applied.values())

    def report(self) -> str:
        """Per action, how many of the planned changes were applied."""
        parts = [
            f"{action.value} {self.applied[action]} of {count}" for action, count in self.planned.items()
        ]
        return ", ".join(parts)

    def interrupted(self, total: int) -> Interrupted:
        return Interrupted(
            done=self.done,
            total=total,
            detail=self.report(),
            in_flight=self.in_flight,
            failed=len(self.failures),
        )


class Stop:
    """A request to stop between batches (the first Ctrl-C), checked before each batch."""

    def __init__(self) -> None:
        self.requested = False

    def request(self) -> None:
        self.requested = True


def apply(
    changes: Sequence[Change],
    provider: Provider,
    *,
    continue_on_error: bool = False,
    progress: Progress | None = None,
    stop: Stop | None = None,
    record: Record | None = None,
) -> ApplyResult:
    """Run ``changes`` (already in plan order) batch by batch.

    Stops at the first failed batch unless ``continue_on_error``; raises `ApplyError`
    listing every failure at the end. When ``stop`` is requested, no new batch starts
    and `Interrupted` reports what was applied; a `KeyboardInterrupt` during a batch
    (a second Ctrl-C) raises `Interrupted` at once, counting that batch as unknown.
    Re-running apply finishes an interrupted job because the next plan is computed
    from what is live.
    """
    result = ApplyResult(planned=Counter(change.action for change in changes))
    run = _apply_lanes if provider.concurrent_writes else _apply_batches
    try:
        run(changes, provider, result, continue_on_error, progress, stop, record)
    except KeyboardInterrupt:
        raise result.interrupted(len(changes)) from None
    if result.failures:
        raise ApplyError(result.failures, result.done)
    return result


def _apply_batches(
    changes: Sequence[Change],
    provider: Provider,
    result: ApplyResult,
    continue_on_error: bool,
    progress: Progress | None,
    stop: Stop | None,
    record: Record | None,
) -> None:
    total = len(changes)
    for action, group in groupby(changes, key=lambda change: change.action):
        batch_of_action = list(group)
        for start in range(0, len(batch_of_action), provider.batch_size):
            if stop is not None and stop.requested:
                raise result.interrupted(total)
            batch = batch_of_action[start : start + provider.batch_size]
            result.in_flight = len(batch)
            settled = result.done + len(result.failures)
            with _within(batch, settled, total, progress):
                failed = _run(provider, action, batch)
            result.in_flight = 0
            result.failures += failed
            result.applied[action] += len(batch) - len(failed)
            _log_batch(action, len(batch), len(failed))
            if record is not None:
                reasons = dict(failed)
                for change in batch:
                    record(change, reasons.get(change.key))
            if progress is not None:
                progress(result.done + len(result.failures), total)
            if failed and not continue_on_error:
                raise ApplyError(result.failures, result.done)


def _apply_lanes(
    changes: Sequence[Change],
    provider: Provider,
    result: ApplyResult,
    continue_on_error: bool,
    progress: Progress | None,
    stop: Stop | None,
    record: Record | None,
) -> None:
    lanes = _Lanes(provider, result, len(changes), continue_on_error, progress, record)
    # Imported here: the HTTP stack is start-up time the local platform need not pay.
    from .http import finished_items

    with finished_items(lanes.finished):
        for segment in segments(changes):
            lanes.run(segment, stop)


class _Lanes:
    """One lane per action, each taking its ready changes a batch at a time.

    Everything below is guarded by ``cond``: lanes settle their batches under it, and
    the calling thread starts lanes and waits on it. The calling thread never runs a
    batch itself, so that a Ctrl-C (delivered to it) is handled at once.
    """

    def __init__(
        self,
        provider: Provider,
        result: ApplyResult,
        total: int,
        continue_on_error: bool,
        progress: Progress | None,
        record: Record | None,
    ) -> None:
        self.provider, self.result, self.total = provider, result, total
        self.continue_on_error, self.progress, self.record = continue_on_error, progress, record
        self.cond = threading.Condition()
        self.running: dict[Action, list[Change]] = {}
        self.ready: dict[Action, list[Change]] = {}
        self.halted = False
        self.error: BaseException | None = None
        self.settled = 0
        self.early: set[str] = set()
        """Changes of batches in flight that the provider already reported finished."""
        self.in_flight: set[str] = set()
        self.segment = Segment()
        self.pending: Counter[Gate] = Counter()
        self.failed_gates: dict[Gate, str] = {}
        self.waiters: dict[Gate, list[Change]] = {}
        self.blocked: dict[str, int] = {}

    # -- the calling thread

    def run(self, segment: Segment, stop: Stop | None) -> None:
        with self.cond:
            self._load(segment)
            while True:
                stopping = stop is not None and stop.requested
                if self.error is None and not self.halted and not stopping:
                    self._start_ready()
                if not self.running:
                    break
                self.cond.wait(0.5)  # a timeout, so that a Ctrl-C is seen within it
            if self.error is not None:
                raise self.error
            if self.halted:
                raise ApplyError(self.result.failures, self.result.done)
            if stop is not None and stop.requested and self._unsettled():
                raise self.result.interrupted(self.total)

    def _load(self, segment: Segment) -> None:
        self.segment = segment
        self.pending = Counter(gate for gates in segment.members.values() for gate in gates)
        self.failed_gates, self.waiters, self.blocked = {}, {}, {}
        for change in segment.changes:
            closed = [gate for gate in segment.waits[change.key] if self.pending[gate] > 0]
            if not closed:
                self.ready.setdefault(change.action, []).append(change)
                continue
            self.blocked[change.key] = len(closed)
            for gate in closed:
                self.waiters.setdefault(gate, []).append(change)

    def _unsettled(self) -> bool:
        return any(self.ready.values()) or bool(self.blocked)

    def _start_ready(self) -> None:
        for action in ORDER:
            queue = self.ready.get(action)
            if not queue or action in self.running:
                continue
            batch = queue[: self.provider.batch_size]
            del queue[: self.provider.batch_size]
            self.running[action] = batch
            self.result.in_flight += len(batch)
            self.in_flight.update(change.key for change in batch)
            threading.Thread(target=self._lane, args=(action, batch), daemon=True).start()

    # -- the lanes

    def _lane(self, action: Action, batch: list[Change]) -> None:
        try:
            failed = dict(_run(self.provider, action, batch))
        except BaseException as exc:  # noqa: BLE001 - handed to the calling thread
            with self.cond:
                self.error = self.error or exc
                self._leave(action, batch)
            return
        with self.cond:
            self._leave(action, batch)
            self.result.failures += sorted(failed.items())
            self.result.applied[action] += len(batch) - len(failed)
            _log_batch(action, len(batch), len(failed))
            for change in batch:
                self._settle(change, failed.get(change.key))
            if failed and not self.continue_on_error:
                self.halted = True
            self._report()

    def _leave(self, action: Action, batch: list[Change]) -> None:
        del self.running[action]
        self.result.in_flight -= len(batch)
        keys = {change.key for change in batch}
        self.in_flight -= keys
        self.early -= keys
        self.cond.notify_all()

    def _settle(self, change: Change, failure: str | None) -> None:
        """``change`` is done (``failure`` None) or failed: open the gates it closed,
        and settle what waited on them; a waiter of a failed change fails unattempted."""
        work = [(change, failure)]
        while work:
            settled, why = work.pop()
            self.settled += 1
            if self.record is not None:
                self.record(settled, why)
            for gate in self.segment.members[settled.key]:
                if why is not None:
                    self.failed_gates.setdefault(gate, settled.key)
                self.pending[gate] -= 1
                if self.pending[gate]:
                    continue
                for waiter in self.waiters.pop(gate, []):
                    self.blocked[waiter.key] -= 1
                    if self.blocked[waiter.key]:
                        continue
                    del self.blocked[waiter.key]
                    waits = self.segment.waits[waiter.key]
                    causes = [self.failed_gates[gate] for gate in waits if gate in self.failed_gates]
                    cause = causes[0] if causes else None
                    if cause is None:
                        self.ready.setdefault(waiter.action, []).append(waiter)
                        continue
                    reason = f"{NOT_ATTEMPTED}{cause} failed"
                    self.result.failures.append((waiter.key, reason))
                    work.append((waiter, reason))

    # -- progress

    def finished(self, item: object) -> None:
        """A provider finished one change of a batch in flight (from its worker)."""
        if self.progress is None or not isinstance(item, Change):
            return
        with self.cond:
            if item.key in self.in_flight:
                self.early.add(item.key)
                self._report()

    def _report(self) -> None:
        if self.progress is None:
            return
        done = self.settled + len(self.early)
        if self.in_flight:  # never all before the last batch settles: it may have a step left
            done = min(done, self.total - 1)
        self.progress(done, self.total)


def _within(
    batch: list[Change], settled: int, total: int, progress: Progress | None
) -> AbstractContextManager[None]:
    """Progress inside a batch: a provider that writes change by change through
    `run_concurrently` moves it per change; any other moves it per batch."""
    if progress is None or len(batch) < 2:
        return nullcontext()
    return _counting(batch, settled, total, progress)


@contextmanager
def _counting(batch: list[Change], settled: int, total: int, progress: Progress) -> Iterator[None]:
    # Imported here: the HTTP stack is start-up time the local platform need not pay.
    from .http import finished_items

    keys = {change.key for change in batch}
    seen: set[str] = set()
    lock = threading.Lock()

    def finished(item: object) -> None:
        if not isinstance(item, Change) or item.key not in keys:
            return
        with lock:
            seen.add(item.key)
            # Never the whole batch: a change may have a step left (tags, a profile).
            count = min(len(seen), len(batch) - 1)
            progress(settled + count, total)

    with finished_items(finished):
        yield


def _log_batch(action: Action, size: int, failed: int) -> None:
    outcome = f"{size - failed} done" + (f", {failed} failed" if failed else "")
    log.info(f"{action.value}: batch of {size}: {outcome}")


def _run(provider: Provider, action: Action, batch: list[Change]) -> list[tuple[str, str]]:
    """The changes of ``batch`` that failed, with why. Rejected credentials stop the
    run (every later call would fail the same way), as do programming errors; any other
    provider error fails only the changes it names, or the batch."""
    try:
        DISPATCH[action](provider, batch)
    except AuthError:
        raise
    except PartialFailure as exc:
        return sorted(exc.failed.items())
    except ProviderError as exc:
        return [(change.key, str(exc)) for change in batch]
    return []


@contextmanager
def interruptible(note: Callable[[str], None]) -> Iterator[Stop]:
    """While apply runs, the first Ctrl-C (or SIGTERM, as CI cancels a job) asks it to
    stop after the batch in flight; a second one stops at once. Either way apply then
    says exactly what it applied (`Interrupted`, exit 130). ``note`` tells the user."""
    stop = Stop()
    if threading.current_thread() is not threading.main_thread():
        yield stop  # signals reach the main thread only
        return

    def handle(signum: int, frame: object) -> None:
        if stop.requested:
            raise KeyboardInterrupt
        stop.request()
        note(
            "interrupted: letting the changes in flight finish, then stopping "
            "(press Ctrl-C again to stop at once)"
        )

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
