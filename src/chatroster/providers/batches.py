"""How a batch's outcome becomes per-change failures: one rule for every provider.

The applier hands a provider a batch of one action's changes and wants back either
success or a `PartialFailure` naming each failed change and why. The rule is the same
on every platform:

- rejected credentials (`AuthError`) stop the run: every later call would fail alike;
- a programming error (anything that is not a `ProviderError` or a `ValueError`, which
  is a bad value in one change) is never swallowed;
- anything else fails only the changes it concerns, in the vendor's words where a
  provider adds them (the ``explain`` hook).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from ..errors import AuthError, PartialFailure, ProviderError

Failures = dict[str, str]
"""Change key → why it failed."""

Explain = Callable[[ProviderError], str | None]
"""A provider's own wording for an error (e.g. what a vendor's error code means for the
user), or ``None`` to use the error's message as it is."""


def reason(error: BaseException, explain: Explain | None = None) -> str:
    """Why a change failed because of ``error``; raises what must stop the run."""
    if isinstance(error, AuthError):
        raise error
    if isinstance(error, ValueError):
        return str(error)
    if not isinstance(error, ProviderError):
        raise error  # a bug, not a platform failure: let it surface
    worded = explain(error) if explain is not None else None
    return worded if worded is not None else str(error)


def raise_if(failed: Mapping[str, str]) -> None:
    """End a batch: a `PartialFailure` naming the failed changes, if any."""
    if failed:
        raise PartialFailure(failed)
