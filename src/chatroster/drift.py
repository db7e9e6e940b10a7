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

Each difference carries, besides its text, what a program needs (`DriftReport.to_json`,
``schemas/drift.schema.json``): the action apply would take to fix it (none for an
extra object, which only ``policy.prune`` removes, or a user of another owner, which
only ``--allow-takeover`` adopts), and every value that differs as a `FieldDrift`,
masked exactly as the text shows it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .changes import ROLE_ACTIONS, Action, Change
from .masking import Masker
from .model import Manifest, State, thaw
from .plan import Plan
from .render.describe import describe
from .runner import Targeting

KINDS = ("missing", "managed", "unowned", "extra")

DRIFT_FORMAT = 2
"""``format_version`` of the JSON form. The first form (without the key) gave each
difference's details as preformatted lines; 2 gives them as `FieldDrift` values."""


@dataclass(frozen=True)
class FieldDrift:
    """One value that differs: where (``name``, ``profile.email``, ``metadata.team``,
    ``blocked`` for a relation), what the platform holds (``live``) and what the
    manifest declares (``expected``); ``None`` is absent, or not declared. Masked."""

    path: tuple[str, ...]
    live: Any
    expected: Any

    @property
    def field(self) -> str:
        return ".".join(self.path)

    def to_json(self) -> dict[str, Any]:
        return {"field": self.field, "path": list(self.path), "live": self.live, "expected": self.expected}


@dataclass(frozen=True)
class Difference:
    uid: str
    kind: str
    description: str
    details: tuple[str, ...] = ()
    """The text form's lines under the description."""
    action: Action | None = None
    """What apply would do about it; ``None``: nothing, as the manifest stands."""
    target: str | None = None
    fields: tuple[FieldDrift, ...] = ()
    role: bool = False
    """A role (``uid`` is its id) rather than a user."""

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "object": "role" if self.role else "user",
            "uid": self.uid,
            "target": self.target,
            "action": None if self.action is None else self.action.value,
            "description": self.description,
            "fields": [found.to_json() for found in self.fields],
        }


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
        """The JSON form (``schemas/drift.schema.json``)."""
        return {
            "format_version": DRIFT_FORMAT,
            "provider": self.provider,
            "owner": self.owner,
            "in_sync": self.clean,
            "summary": self.counts(),
            "differences": [difference.to_json() for difference in self.differences],
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
    manifest: Manifest, live: State, plan: Plan, wanted: Callable[[str], bool], masker: Masker
) -> list[Difference]:
    """Owned roles the manifest does not declare and the plan does not delete."""
    declared = manifest.desired.roles or {}
    deleted = {c.uid for c in plan.changes if c.action is Action.DELETE_ROLE}
    return [
        Difference(
            name,
            "extra",
            "role owned but not in the manifest",
            fields=(FieldDrift(("owner",), masker.field("owner", role.owner), None),),
            role=True,
        )
        for name, role in sorted((live.roles or {}).items())
        if role.owner == manifest.owner and name not in declared and name not in deleted and wanted(name)
    ]


def _fields(change: Change, masker: Masker) -> tuple[FieldDrift, ...]:
    """Every value ``change`` would change, masked as the text shows it (the same
    `Masker.field` of the whole field), mappings (profile, metadata) key by key."""
    found: list[FieldDrift] = []
    for name in sorted(set(change.before) | set(change.after)):
        live = thaw(masker.field(name, change.before.get(name)))
        expected = thaw(masker.field(name, change.after.get(name)))
        found += _compared((name,), live, expected)
    return tuple(found)


def _compared(path: tuple[str, ...], live: Any, expected: Any) -> list[FieldDrift]:
    if isinstance(live, dict) and isinstance(expected, dict):
        keys = sorted(set(live) | set(expected))
        return [d for key in keys for d in _compared((*path, str(key)), live.get(key), expected.get(key))]
    return [] if live == expected else [FieldDrift(path, live, expected)]


def _of_change(change: Change, masker: Masker) -> Difference:
    line = describe(change, masker)
    return Difference(
        change.uid,
        _kind(change),
        line.headline,
        line.details,
        action=change.action,
        target=change.target,
        fields=_fields(change, masker),
        role=change.action in ROLE_ACTIONS,
    )


def report(
    manifest: Manifest, live: State, plan: Plan, masker: Masker, targeting: Targeting | None = None
) -> DriftReport:
    """Classify every change of ``plan`` (already targeted) and add the users it refused
    and the owned users the manifest leaves out, within ``targeting``."""
    wanted = targeting.wants_user if targeting else (lambda uid: True)
    wanted_role = targeting.wants_role if targeting else (lambda name: True)
    found = [_of_change(change, masker) for change in plan.changes]
    for uid in filter(wanted, plan.conflicts):
        owner = plan.conflict_owners.get(uid, "")
        owners = FieldDrift(("owner",), masker.field("owner", owner), masker.field("owner", manifest.owner))
        found.append(
            Difference(uid, "unowned", f"owned by '{owner}', not '{manifest.owner}'", fields=(owners,))
        )
    pruned = {c.uid for c in plan.changes if c.action in (Action.DELETE_USER, Action.DEACTIVATE_USER)}
    for uid, user in sorted(live.users.items()):
        if (
            user.owner == manifest.owner
            and uid not in manifest.desired.users
            and uid not in pruned
            and wanted(uid)
        ):
            state = "active" if user.active else "deactivated"
            live_state = (
                FieldDrift(("owner",), masker.field("owner", user.owner), None),
                FieldDrift(("active",), user.active, None),
            )
            found.append(
                Difference(uid, "extra", f"owned ({state}) but not in the manifest", fields=live_state)
            )
    found += _extra_roles(manifest, live, plan, wanted_role, masker)
    ordered = tuple(sorted(found, key=lambda d: (KINDS.index(d.kind), d.uid, d.description)))
    return DriftReport(ordered, dict(plan.provider), manifest.owner)
