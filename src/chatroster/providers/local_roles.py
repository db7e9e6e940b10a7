"""The local platform's role writes, one function per action, each returning why its
change failed or ``None``. The ownership marker is the ``roles.owner`` column."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..changes import Change
from ..store import Store

#: What a role change may write.
_FIELDS = frozenset({"description", "metadata", "owner"})


def create(store: Store, change: Change) -> str | None:
    current = store.roles().get(change.uid)
    owner = change.after.get("owner")
    if current is not None and current.owner != owner:
        return (
            f"role '{change.uid}' already exists (owner {current.owner or 'none'}); "
            "run plan again to adopt or take it over"
        )
    # Absent: create it. Ours already: an earlier, interrupted apply made it.
    store.put_role(change.uid, fields(change.after))
    return None


def update(store: Store, change: Change) -> str | None:
    if change.uid not in store.roles():
        return f"role '{change.uid}' does not exist; run plan again"
    store.put_role(change.uid, fields(change.after))
    return None


def delete(store: Store, change: Change) -> str | None:
    store.delete_role(change.uid)  # gone already (a retried apply): nothing left to do
    return None


def fields(after: Mapping[str, Any]) -> dict[str, Any]:
    """The role columns a change writes; any other key means a damaged change."""
    unknown = set(after) - _FIELDS
    if unknown:
        raise ValueError(f"a role has no field {sorted(unknown)[0]!r}")
    return dict(after)
