"""Safety limits: refuse plans that would take away too much at once (exit 3)."""

from __future__ import annotations

from .changes import Action
from .errors import UnsafePlanError
from .model import Limit, Policy
from .plan import Plan

_LIMITS: tuple[tuple[Action, str, str], ...] = (
    (Action.DEACTIVATE_USER, "max_deactivate", "deactivated"),
    (Action.DELETE_USER, "max_delete", "deleted"),
    (Action.UNBAN_USER, "max_unban", "unbanned"),
    (Action.UPDATE_USER, "max_update", "updated"),
)


def limit_reasons(plan: Plan, policy: Policy, label: str) -> list[str]:
    """Every limit the plan exceeds, as a message saying what and how to override."""
    found = []
    for action, name, verb in _LIMITS:
        limit: Limit = getattr(policy, name)
        n = _counted(plan, action)
        if n == 0 or limit.allows(n, plan.managed):
            continue
        share = f" ({n * 100 // plan.managed}%)" if plan.managed else ""
        found.append(
            f"[{label}] {n} of {plan.managed} users{share} would be {verb}, over the "
            f"policy.{name} limit of {limit}; re-run with --force to proceed"
        )
    return found


def conflict_reasons(plan: Plan, label: str) -> list[str]:
    """Declared users that belong to another owner (refused even with --force)."""
    found = []
    if plan.conflicts:
        listed = ", ".join(f"{uid} (owner '{plan.conflict_owners.get(uid, '')}')"
                           for uid in plan.conflicts[:10])
        more = f" and {len(plan.conflicts) - 10} more" if len(plan.conflicts) > 10 else ""
        found.append(
            f"[{label}] {len(plan.conflicts)} declared user(s) belong to another owner: "
            f"{listed}{more}; re-run with --allow-takeover to take them over"
        )
    return found


def _counted(plan: Plan, action: Action) -> int:
    """Changes that count against ``action``'s limit.

    Updates of users the same plan adopts do not: the limit guards users already
    managed, and the users an interrupted first apply left half-made are adopted and
    completed by the next run, which must not need --force to finish the job.
    """
    if action is not Action.UPDATE_USER:
        return plan.count(action)
    adopted = {c.uid for c in plan.changes if c.action is Action.ADOPT_USER}
    return sum(1 for c in plan.changes if c.action is action and c.uid not in adopted)


def check(plan: Plan, policy: Policy, label: str, *, force: bool) -> None:
    """Raise `UnsafePlanError` when a limit is exceeded and ``force`` is not given.

    Ownership conflicts are refused even with ``--force``: taking over another team's
    users is a different decision from going over a limit.
    """
    found = [] if force else limit_reasons(plan, policy, label)
    found += conflict_reasons(plan, label)
    if found:
        raise UnsafePlanError(found)
