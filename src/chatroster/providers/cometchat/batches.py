"""Running a batch of changes as CometChat calls, and telling which changes failed.

The provider protocol wants, for every batch it hands over, either success or a
`PartialFailure` naming each failed change. A write returns why its change failed, or
raises; each outcome is settled per change by the one rule of `providers.batches` (a
credentials error stops everything, a bug is never swallowed, anything else fails only
the changes it concerns), worded for CometChat.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ...changes import Change
from ...errors import CometChatError, ProviderError
from ...http import run_concurrently
from ..batches import Failures, reason

Outcome = str | None
"""One change's outcome: ``None`` when done, else why it failed."""


class Batches:
    def __init__(self, concurrency: int) -> None:
        self.concurrency = concurrency

    def each(self, changes: Sequence[Change], write: Callable[[Change], Outcome]) -> Failures:
        """Run ``write`` over the changes concurrently; the failures by change key."""
        failed: Failures = {}
        for change, outcome in run_concurrently(write, changes, self.concurrency):
            found = problem(change.uid, outcome)
            if found is not None:
                failed[change.key] = found
        return failed


def problem(uid: str, outcome: Any) -> str | None:
    """Why a change failed, from what its write returned or raised (by the rule of
    `providers.batches`, worded for CometChat); ``None``: done."""
    if isinstance(outcome, BaseException):
        return reason(outcome, lambda error: _explain(uid, error))
    return outcome if isinstance(outcome, str) else None


def _explain(uid: str, error: ProviderError) -> str | None:
    if isinstance(error, CometChatError) and error.code == "ERR_UID_NOT_FOUND":
        return (
            f"{error}; '{uid}' does not exist on CometChat or is deactivated (CometChat "
            "refuses changes to deactivated users; remove active: false to reactivate it)"
        )
    return None


def block_problem(uid: str, target: str, outcome: Any) -> str | None:
    """Why blocking (or unblocking) one target failed, from the call's outcome: the
    vendor answers per target; one already in the wanted state is done."""
    if isinstance(outcome, BaseException):
        return problem(uid, outcome)
    result = (outcome or {}).get(target) or (outcome or {}).get(target.lower())
    if not isinstance(result, Mapping):
        return f"CometChat gave no result for '{uid}' -> '{target}'"
    message = str(result.get("message", ""))
    if result.get("success") or "already" in message.lower():
        return None
    return f"'{uid}' -> '{target}': {message or 'refused by CometChat'}"
