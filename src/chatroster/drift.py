"""Drift: how live state differs from the manifest, sorted into kinds a scheduled job
can alert on without noise.

- ``missing``: declared but not on the platform;
- ``managed``: a field, relation or ban the manifest manages has drifted;
- ``unowned``: declared, on the platform, but not owned by this manifest (adoption or
  another owner);
- ``extra``: owned by this manifest's owner, on the platform, not in the manifest.
"""

from __future__ import annotations

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
    if change.action is Action.CREATE_USER:
        return "missing"
    if change.action is Action.ADOPT_USER:
        return "unowned"
    return "managed"


def report(
    manifest: Manifest, live: State, plan: Plan, masker: Masker, targeting: Targeting | None = None
) -> DriftReport:
    """Classify every change of ``plan`` (already targeted) and add the users it refused
    and the owned users the manifest leaves out, within ``targeting``."""
    wanted = targeting.wants_user if targeting else (lambda uid: True)
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
    ordered = tuple(sorted(found, key=lambda d: (KINDS.index(d.kind), d.uid, d.description)))
    return DriftReport(ordered, dict(plan.provider), manifest.owner)
