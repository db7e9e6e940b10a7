"""Running a batch of changes as vendor calls, and telling which changes failed.

The provider protocol wants, for every batch it hands over, either success or a
`PartialFailure` naming each failed change. These helpers run calls concurrently and
settle each call's outcome per change by the one rule of `providers.batches` (a
credentials error stops everything, a bug is never swallowed, anything else fails only
the changes it concerns), worded for Nexconn.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any, TypeVar

from ...changes import Change
from ...errors import AuthError, ProviderError, Refusal, TransportError
from ...http import run_concurrently
from ..batches import Failures, raise_if, reason
from ..requests import serving
from .api import user_not_found

K = TypeVar("K", bound=Hashable)
Step = Callable[[list[Change]], Failures]
Call = Callable[[K, list[Change]], Any]
Verify = Callable[[K, list[Change]], set[str]]
"""Which changes (by key) a read shows as done."""


class Batches:
    def __init__(self, concurrency: int) -> None:
        self.concurrency = concurrency

    def pipeline(self, changes: Sequence[Change], steps: Iterable[Step]) -> None:
        """Run the steps in order, each on the changes no earlier step failed."""
        failed: Failures = {}
        for step in steps:
            pending = [c for c in changes if c.key not in failed]
            if pending:
                failed.update(step(pending))
        raise_if(failed)

    def each(self, changes: list[Change], write: Callable[[Change], None]) -> Failures:
        """One write per change, concurrently."""

        def serve(change: Change) -> None:
            with serving([change]):
                write(change)

        failed: Failures = {}
        for change, outcome in run_concurrently(serve, changes, self.concurrency):
            if isinstance(outcome, BaseException):
                failed.update(failure([change], outcome))
        return failed

    def groups(
        self, groups: list[tuple[K, list[Change]]], call: Call[K], verify: Verify[K] | None
    ) -> Failures:
        """One batch call per group, concurrently, each settled by `settle`."""
        failed: Failures = {}
        results = run_concurrently(
            lambda group: self.settle(group[0], group[1], call, verify), groups, self.concurrency
        )
        for (_, chunk), outcome in results:
            if isinstance(outcome, BaseException):
                failed.update(failure(chunk, outcome))
            else:
                failed.update(outcome)
        return failed

    def settle(self, key: K, chunk: list[Change], call: Call[K], verify: Verify[K] | None) -> Failures:
        """Make one batch call; if it fails, find out which of its changes are done.

        A retried call may have taken effect the first time (the answer was lost), so
        what a read shows as done counts as done, once. When the vendor refused the call,
        the rest are tried one by one, since it refuses a whole call for one bad user.
        """
        try:
            with serving(chunk):
                call(key, chunk)
            return {}
        except AuthError:
            raise
        except ProviderError as exc:
            error = exc
        pending = chunk
        if verify is not None:
            try:
                done = verify(key, chunk)
            except AuthError:
                raise
            except ProviderError:
                done = set()
            pending = [c for c in chunk if c.key not in done]
        if len(pending) > 1 and isinstance(error, Refusal):
            failed: Failures = {}
            for change in pending:
                failed.update(self.settle(key, [change], call, None))
            return failed
        return failure(pending, error)


def failure(chunk: Sequence[Change], error: BaseException) -> Failures:
    """Why each change of a chunk failed, by the rule of `providers.batches`."""
    why = reason(error, _explain)
    return {change.key: why for change in chunk}


def _explain(error: ProviderError) -> str | None:
    """Nexconn's errors in words that say what to do."""
    if isinstance(error, Refusal) and user_not_found(error):
        return f"{error} (Nexconn refuses changes to users that do not exist or are deactivated)"
    if isinstance(error, TransportError):
        return f"{error}; run apply again to finish"
    return None
