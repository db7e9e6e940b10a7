"""A `Plan`: the ordered changes from one diff, what they were computed against, and
its JSON form (the structure `--format json` prints and `--out` saves)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from .changes import ORDER, Action, Change
from .errors import PlanFileError

FORMAT_VERSION = 1


@dataclass(frozen=True)
class Plan:
    changes: tuple[Change, ...]
    owner: str
    managed: int = 0
    """Users on the platform the manifest manages: the base of percentage limits."""
    conflicts: tuple[str, ...] = ()
    """Declared users owned by another owner, refused without --allow-takeover."""
    conflict_owners: Mapping[str, str] = field(default_factory=dict)
    created_at: datetime | None = None
    provider: Mapping[str, Any] = field(default_factory=dict)
    """The provider's identity (type, app, url or file): never a secret."""
    manifest_digest: str = ""
    manifest_files: tuple[str, ...] = ()
    """The files the manifest was read from, so `apply --plan` can find it again."""
    targeting: Mapping[str, Any] = field(default_factory=dict)
    """--target/--exclude/--only used to make it; empty for a full plan."""
    fingerprints: Mapping[str, str] = field(default_factory=dict)
    """Per change key, a hash of the live object it was computed from."""
    warnings: tuple[str, ...] = ()
    """What the manifest asks for that cannot be done and was left out."""
    refresh: str = "full"
    """How live state was read: ``full``, or ``changed`` (see `chatroster.refresh`)."""
    trusted: int = 0
    """Declared users taken as in sync without per-user reads (``changed``)."""
    records: tuple[str, ...] = ()
    """Users whose applied state apply records (a missing or stale digest)."""
    stale: tuple[str, ...] = ()
    """Those of ``records`` holding a stale digest, removed before their changes."""

    def summary(self) -> dict[str, int]:
        """A count per action, in plan order, only for actions present."""
        counts = Counter(change.action for change in self.changes)
        return {action.value: counts[action] for action in ORDER if counts[action]}

    def count(self, action: Action) -> int:
        return sum(1 for change in self.changes if change.action is action)

    @property
    def empty(self) -> bool:
        return not self.changes

    def refusals(self) -> list[str]:
        """One line per declared user refused because another owner holds it."""
        return [
            f"{uid} belongs to owner '{self.conflict_owners.get(uid, '')}': refused "
            "(re-run with --allow-takeover to take it over)"
            for uid in self.conflicts
        ]

    def evolve(self, **changes: Any) -> Plan:
        return replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "format_version": FORMAT_VERSION,
            "created_at": self.created_at.strftime("%Y-%m-%dT%H:%M:%SZ") if self.created_at else None,
            "provider": dict(self.provider),
            "owner": self.owner,
            "manifest_digest": self.manifest_digest,
            "manifest_files": list(self.manifest_files),
            "managed": self.managed,
            "summary": self.summary(),
            "changes": [change.to_json() for change in self.changes],
        }
        if self.targeting:
            data["targeting"] = dict(self.targeting)
        if self.conflicts:
            data["conflicts"] = [
                {"uid": uid, "owner": self.conflict_owners.get(uid, "")} for uid in self.conflicts
            ]
        if self.fingerprints:
            data["fingerprints"] = dict(self.fingerprints)
        if self.warnings:
            data["warnings"] = list(self.warnings)
        data["refresh"] = {"mode": self.refresh, "trusted": self.trusted, "records": len(self.records)}
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Plan:
        if data.get("format_version") != FORMAT_VERSION:
            raise PlanFileError(
                f"unsupported plan format_version {data.get('format_version')!r}; "
                f"make the plan again with this version of chatroster"
            )
        try:
            created = data.get("created_at")
            return cls(
                changes=tuple(Change.from_json(item) for item in data["changes"]),
                owner=data["owner"],
                managed=int(data.get("managed", 0)),
                created_at=datetime.fromisoformat(created.replace("Z", "+00:00")) if created else None,
                provider=data.get("provider", {}),
                manifest_digest=data.get("manifest_digest", ""),
                manifest_files=tuple(data.get("manifest_files", ())),
                targeting=data.get("targeting", {}),
                fingerprints=data.get("fingerprints", {}),
                warnings=tuple(data.get("warnings", ())),
                refresh=str((data.get("refresh") or {}).get("mode", "full")),
                trusted=int((data.get("refresh") or {}).get("trusted", 0)),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise PlanFileError(f"the plan file is damaged ({exc!r}); make the plan again") from None
