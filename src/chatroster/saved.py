"""Saved plans (`plan --out`, `apply --plan`): read one back and check it still holds.

`apply --plan` applies exactly what was reviewed: it re-reads only the objects the
plan touches and refuses when one changed since, unless it is already in the planned
end state (then that change is skipped, so a half-applied plan is finished).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

from .changes import Action
from .errors import PlanFileError
from .fingerprint import fingerprint, reached
from .model import Manifest
from .plan import Plan
from .providers import Provider, Scope

_BLOCKS = frozenset({Action.ADD_BLOCK, Action.REMOVE_BLOCK})
_WHITELIST = frozenset({Action.ADD_WHITELIST, Action.REMOVE_WHITELIST, Action.SET_WHITELIST_MODE})
_BANS = frozenset({Action.BAN_USER, Action.UNBAN_USER})


def load_plan(path: Path) -> Plan:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise PlanFileError(
            f"{path}: no such plan file; make one with `chatroster plan --out {path}`"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PlanFileError(f"{path}: not a readable plan file ({exc}); make the plan again") from None
    if not isinstance(data, dict):
        raise PlanFileError(f"{path}: not a chatroster plan; make the plan again")
    return Plan.from_json(data)


def check_origin(plan: Plan, manifest: Manifest, identity: dict[str, object],
                 now: datetime, max_age: timedelta | None) -> None:
    """Refuse a plan made for another platform, owner or manifest, or too old."""
    if dict(plan.provider) != identity:
        raise PlanFileError(
            f"the plan was made for {dict(plan.provider)}, but the manifest points at "
            f"{identity}; make the plan again for this platform"
        )
    if plan.owner != manifest.owner:
        raise PlanFileError(f"the plan was made for owner '{plan.owner}', the manifest says "
                            f"'{manifest.owner}'; make the plan again")
    if plan.manifest_digest and manifest.digest and plan.manifest_digest != manifest.digest:
        raise PlanFileError("the manifest changed since the plan was made; make the plan "
                            "again from this manifest and review it")
    if max_age is not None and plan.created_at is not None and now - plan.created_at > max_age:
        raise PlanFileError(f"the plan was made at {plan.created_at:%Y-%m-%d %H:%M:%S} UTC, "
                            f"longer ago than --max-age; make the plan again")


def scope_of(plan: Plan) -> Scope:
    """Only the objects the plan touches."""
    def uids(actions: frozenset[Action]) -> frozenset[str]:
        return frozenset(c.uid for c in plan.changes if c.action in actions)

    return Scope(
        uids=frozenset(c.uid for c in plan.changes),
        owner=plan.owner,
        blocklists=uids(_BLOCKS),
        whitelists=uids(_WHITELIST),
        bans=bool(uids(_BANS)),
    )


def recheck(plan: Plan, manifest: Manifest, provider: Provider, *, now: datetime,
            max_age: timedelta | None = None) -> Plan:
    """The changes of ``plan`` still to make; raises `PlanFileError` listing stale ones."""
    check_origin(plan, manifest, provider.identity(), now, max_age)
    live = provider.read(scope_of(plan))
    kept, stale = [], []
    for change in plan.changes:
        if fingerprint(change, live, plan.owner) == plan.fingerprints.get(change.key):
            kept.append(change)
        elif not reached(change, live):
            stale.append(change.key)
    if stale:
        listed = "\n".join(f"  {key}" for key in stale[:50])
        more = f"\n  ... and {len(stale) - 50} more" if len(stale) > 50 else ""
        raise PlanFileError(
            f"{len(stale)} object(s) changed since the plan was made:\n{listed}{more}\n"
            "Nothing was applied; make the plan again and review it."
        )
    return plan.evolve(changes=tuple(kept))
