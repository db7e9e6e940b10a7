"""Apply: carry out a plan's changes in order through one dispatch table."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import groupby

from .changes import Action, Change
from .errors import ApplyError, ProviderError
from .providers.base import PartialFailure, Provider

#: The one place a change becomes a provider call.
DISPATCH: dict[Action, str] = {  # action → the `Provider` method that carries it out
    Action.ADOPT_USER: "adopt_users",
    Action.CREATE_USER: "create_users",
    Action.UPDATE_USER: "update_users",
    Action.REACTIVATE_USER: "reactivate_users",
    Action.UNBAN_USER: "unban_users",
    Action.BAN_USER: "ban_users",
    Action.REMOVE_BLOCK: "remove_blocks",
    Action.ADD_BLOCK: "add_blocks",
    Action.SET_WHITELIST_MODE: "set_whitelist_modes",
    Action.REMOVE_WHITELIST: "remove_whitelist",
    Action.ADD_WHITELIST: "add_whitelist",
    Action.EXPIRE_TOKENS: "expire_tokens",
    Action.DEACTIVATE_USER: "deactivate_users",
    Action.DELETE_USER: "delete_users",
}

Progress = Callable[[int, int], None]
"""Called with (changes done, changes in all) after each batch."""


@dataclass
class ApplyResult:
    done: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)


def apply(
    changes: Sequence[Change],
    provider: Provider,
    *,
    continue_on_error: bool = False,
    progress: Progress | None = None,
) -> ApplyResult:
    """Run ``changes`` (already in plan order) batch by batch.

    Stops at the first failed batch unless ``continue_on_error``; raises `ApplyError`
    listing every failure at the end. Re-running apply finishes an interrupted job
    because the next plan is computed from what is live.
    """
    result = ApplyResult()
    total = len(changes)
    for action, group in groupby(changes, key=lambda change: change.action):
        batch_of_action = list(group)
        for start in range(0, len(batch_of_action), provider.batch_size):
            batch = batch_of_action[start : start + provider.batch_size]
            failed = _run(provider, action, batch)
            result.failures += failed
            result.done += len(batch) - len(failed)
            if progress is not None:
                progress(result.done + len(result.failures), total)
            if failed and not continue_on_error:
                raise ApplyError(result.failures, result.done)
    if result.failures:
        raise ApplyError(result.failures, result.done)
    return result


def _run(provider: Provider, action: Action, batch: list[Change]) -> list[tuple[str, str]]:
    try:
        getattr(provider, DISPATCH[action])(batch)
    except PartialFailure as exc:
        return sorted(exc.failed.items())
    except ProviderError as exc:
        return [(change.key, str(exc)) for change in batch]
    return []
