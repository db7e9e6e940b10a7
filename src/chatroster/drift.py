"""Drift: how live state differs from the manifest, sorted into kinds a scheduled job
can alert on without noise.

- ``missing``: declared but not on the platform;
- ``managed``: a field, relation or ban the manifest manages has drifted;
- ``unowned``: declared, on the platform, but not owned by this manifest (adoption or
  another owner);
- ``extra``: owned by this manifest's owner, on the platform, not in the manifest.

Roles are sorted the same way (their ``uid`` is the role id, their description starts
with "role"): a declared role the platform lacks is missing, one whose description or
metadata moved is managed, one without an owner is unowned, and an owned role the
manifest leaves out is extra.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .changes import Action, Change
from .masking import Masker
from .model import Manifest, State
from .plan import Plan
from .render.describe import describe
from .runner import Targeting

KINDS = ("missing", "managed", "unowned", "extra")


@dataclass(frozen=True)
class Difference:
    uid: str
    kind: str
    description: str
    details: tuple[str, ...] = ()


@dataclass(frozen=True)
class DriftReport:
    differences: tuple[Difference, ...]
    provider: dict[str, Any]
    owner: str

    @property
    def clean(self) -> bool:
        return not self.differences

    def counts(self) -> dict[str, int]:
        return {kind: n for kind in KINDS if (n := sum(1 for d in self.differences if d.kind == kind))}

    def to_json(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "owner": self.owner,
            "in_sync": self.clean,
            "summary": self.counts(),
            "differences": [
                {"uid": d.uid, "kind": d.kind, "description": d.description, "details": list(d.details)}
                for d in self.differences
            ],
        }


def _kind(change: Change) -> str:
    if change.action in (Action.CREATE_USER, Action.CREATE_ROLE):
        return "missing"
    if change.action is Action.ADOPT_USER:
        return "unowned"
    if change.action is Action.DELETE_ROLE:
        return "extra"
    if change.action is Action.UPDATE_ROLE and "owner" in change.after and len(change.after) == 1:
        return "unowned"
    return "managed"


def _extra_roles(
    manifest: Manifest, live: State, plan: Plan, wanted: Callable[[str], bool]
) -> list[Difference]:
    """Owned roles the manifest does not declare and the plan does not delete."""
    declared = manifest.desired.roles or {}
    deleted = {c.uid for c in plan.changes if c.action is Action.DELETE_ROLE}
    return [
        Difference(name, "extra", "role owned but not in the manifest")
        for name, role in sorted((live.roles or {}).items())
        if role.owner == manifest.owner and name not in declared and name not in deleted and wanted(name)
    ]


def report(
    manifest: Manifest, live: State, plan: Plan, masker: Masker, targeting: Targeting | None = None
) -> DriftReport:
    """Classify every change of ``plan`` (already targeted) and add the users it refused
    and the owned users the manifest leaves out, within ``targeting``."""
    wanted = targeting.wants_user if targeting else (lambda uid: True)
    wanted_role = targeting.wants_role if targeting else (lambda name: True)
    found = []
    for change in plan.changes:
        line = describe(change, masker)
        found.append(Difference(change.uid, _kind(change), line.headline, line.details))
    for uid in filter(wanted, plan.conflicts):
        owner = plan.conflict_owners.get(uid, "")
        found.append(Difference(uid, "unowned", f"owned by '{owner}', not '{manifest.owner}'"))
    pruned = {c.uid for c in plan.changes if c.action in (Action.DELETE_USER, Action.DEACTIVATE_USER)}
    for uid, user in sorted(live.users.items()):
        if (
            user.owner == manifest.owner
            and uid not in manifest.desired.users
            and uid not in pruned
            and wanted(uid)
        ):
            state = "active" if user.active else "deactivated"
            found.append(Difference(uid, "extra", f"owned ({state}) but not in the manifest"))
    found += _extra_roles(manifest, live, plan, wanted_role)
    ordered = tuple(sorted(found, key=lambda d: (KINDS.index(d.kind), d.uid, d.description)))
    return DriftReport(ordered, dict(plan.provider), manifest.owner)
