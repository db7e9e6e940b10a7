"""Safety limits: refuse plans that would take away too much at once (exit 3)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .changes import Action, Change
from .errors import UnsafePlanError
from .model import Limit, Policy
from .plan import Plan
from .providers.base import Capacity

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
        listed = ", ".join(
            f"{uid} (owner '{plan.conflict_owners.get(uid, '')}')" for uid in plan.conflicts[:10]
        )
        more = f" and {len(plan.conflicts) - 10} more" if len(plan.conflicts) > 10 else ""
        found.append(
            f"[{label}] {len(plan.conflicts)} declared user(s) belong to another owner: "
            f"{listed}{more}; re-run with --allow-takeover to take them over"
        )
    return found


def capacity_reasons(plan: Plan, capacity: Capacity | None, label: str) -> list[str]:
    """A plan that would register more users than the app may hold (a Nexconn
    development app: 100). Refused even with --force: the vendor would refuse the
    registrations half-way through the apply."""
    adds = plan.count(Action.CREATE_USER)
    if capacity is None or adds == 0 or capacity.registered + adds <= capacity.limit:
        return []
    return [
        f"[{label}] the {capacity.environment} app has {capacity.registered} registered "
        f"users and this plan registers {adds} more ({capacity.registered + adds}), over the "
        f"{capacity.environment} environment's limit of {capacity.limit} registered users; "
        "delete test users in the console, declare fewer users, or use a production app "
        "(provider.environment: production)"
    ]


def _counted(plan: Plan, action: Action) -> int:
    """Changes that count against ``action``'s limit.

    An update counts only when it can lose data: it overwrites or removes a value the
    platform holds. Filling fields that are empty there (a user a crashed run registered
    but never finished, an adopted user whose fields were never written) loses nothing,
    so a rerun that finishes an interrupted apply never needs --force. Updates of users
    the same plan adopts do not count either: the limit guards users already managed.
    """
    if action is not Action.UPDATE_USER:
        return plan.count(action)
    adopted = {c.uid for c in plan.changes if c.action is Action.ADOPT_USER}
    return sum(1 for c in plan.changes if c.action is action and c.uid not in adopted and overwrites(c))


def overwrites(change: Change) -> bool:
    """Whether ``change`` replaces or removes a value that is set on the platform."""
    return any(_loses(change.before.get(name), value) for name, value in change.after.items())


def _loses(before: Any, after: Any) -> bool:
    if _empty(before):
        return False
    if isinstance(before, Mapping) and isinstance(after, Mapping):
        return any(_loses(value, after.get(key)) for key, value in before.items())
    if isinstance(before, (list, tuple, frozenset)) and isinstance(after, (list, tuple, frozenset)):
        return bool(set(map(str, before)) - set(map(str, after)))
    return bool(before != after)


def _empty(value: Any) -> bool:
    return (
        value is None or value == "" or (isinstance(value, (Mapping, list, tuple, frozenset)) and not value)
    )


def check(plan: Plan, policy: Policy, label: str, *, force: bool, capacity: Capacity | None = None) -> None:
    """Raise `UnsafePlanError` when a limit is exceeded and ``force`` is not given.

    Ownership conflicts are refused even with ``--force``: taking over another team's
    users is a different decision from going over a limit. So is going over the app's
    limit on registered users (``capacity``), which the vendor enforces anyway.
    """
    found = [] if force else limit_reasons(plan, policy, label)
    found += conflict_reasons(plan, label)
    found += capacity_reasons(plan, capacity, label)
    if found:
        raise UnsafePlanError(found)
