"""Several environments in one command: each run on its own thread, results in order.

Each environment is its own app, with its own rate limit, so reading them one after
another would only add their waits up. A run that fails is one result among the
others, never the end of the command: its error is kept with its exit code, and the
command's exit code is the worst of them (`combined_exit`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, TypeVar

from .errors import EXIT_CHANGES, EXIT_ERROR, EXIT_OK, EXIT_UNSAFE, ChatrosterError
from .manifest.environments import Target

T = TypeVar("T")

MAX_WORKERS = 8
"""Environments read at once; each mostly waits on its platform."""

SEVERITY = (EXIT_ERROR, EXIT_UNSAFE, EXIT_CHANGES, EXIT_OK)
"""Exit codes, worst first: an error hides a refusal, which hides changes."""


@dataclass(frozen=True)
class Result(Generic[T]):
    """One environment's run: its value, or the error that stopped it."""

    target: Target
    value: T | None
    error: ChatrosterError | None
    exit_code: int

    @property
    def name(self) -> str:
        return self.target.name


def run_each(
    targets: Sequence[Target], work: Callable[[Target], tuple[T, int]], *, workers: int = MAX_WORKERS
) -> list[Result[T]]:
    """``work`` on every target at once; results in the order of ``targets``.

    ``work`` returns its value and exit code; a `ChatrosterError` it raises becomes
    that target's result. Anything else is a bug and ends the command.
    """

    def one(target: Target) -> Result[T]:
        try:
            value, code = work(target)
        except ChatrosterError as error:
            return Result(target, None, error, error.exit_code)
        return Result(target, value, None, code)

    pool = ThreadPoolExecutor(max_workers=max(1, min(workers, len(targets))))
    try:
        return list(pool.map(one, targets))
    finally:
        # On Ctrl-C, environments not started yet are not started; reads under way end
        # on their own (they write nothing).
        pool.shutdown(wait=False, cancel_futures=True)


def combined_exit(codes: Iterable[int]) -> int:
    """The worst of the exit codes: 1 before 3 before 2 before 0."""
    found = set(codes)
    return next((code for code in SEVERITY if code in found), EXIT_OK)
