"""The local provider's friends: reading them into the model and carrying out the
friend actions, on the store's ``friends`` and ``friend_permissions`` tables
(`chatroster.store.friends`). A mixin of `LocalProvider`, which gives it the store and
its one way of writing a batch (`LocalProvider._each`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ..changes import Change
from ..model import User, freeze
from ..store import Store
from ..store import friends as stored

Outcome = str | None


class LocalFriends:
    store: Store

    if TYPE_CHECKING:  # given by `LocalProvider`; no stub at run time, which could shadow it

        def _each(
            self,
            changes: Sequence[Change],
            write: Callable[[Change], Outcome],
            first: Callable[[], None] | None = None,
            then: Callable[[], None] | None = None,
        ) -> None: ...

    # ------------------------------------------------------------------------ read

    def _fill_friends(
        self, users: dict[str, User], managed: frozenset[str] | None, permitted: frozenset[str] | None
    ) -> None:
        """Friends of the ``managed`` users and the permission of the ``permitted`` ones
        (``None``: of everyone); the others keep ``None`` (unmanaged, not read)."""
        friendly = list(users) if managed is None else [uid for uid in managed if uid in users]
        found = stored.friends(self.store, friendly)
        for uid in friendly:
            # Set in place, as `LocalProvider._fill_relations` does, for the same reason.
            object.__setattr__(users[uid], "friends", freeze(found.get(uid, {})))
        asked = list(users) if permitted is None else [uid for uid in permitted if uid in users]
        numbers = stored.permissions(self.store, asked)
        for uid in asked:
            name = stored.PERMISSION_NAMES[numbers.get(uid, stored.DEFAULT_PERMISSION)]
            object.__setattr__(users[uid], "friend_permission", name)

    # ----------------------------------------------------------------------- write

    def add_friends(self, changes: Sequence[Change]) -> None:
        self._each(changes, self._add_friend)

    def remove_friends(self, changes: Sequence[Change]) -> None:
        self._each(changes, self._remove_friend)

    def update_friends(self, changes: Sequence[Change]) -> None:
        self._each(changes, self._update_friend)

    def set_friend_permissions(self, changes: Sequence[Change]) -> None:
        self._each(changes, self._set_friend_permission)

    def _add_friend(self, change: Change) -> Outcome:
        target = _target(change)
        alias, ext = _profile(change.after)
        missing = self._missing(change.uid, target)
        if missing is None:
            stored.add(self.store, change.uid, target)
            if alias or ext:
                stored.set_profile(self.store, change.uid, target, alias, ext)
        return missing

    def _remove_friend(self, change: Change) -> Outcome:
        # Only the user must exist: ending a friendship is always safe.
        missing = self._missing(change.uid)
        if missing is None:
            stored.remove(self.store, change.uid, [_target(change)])
        return missing

    def _update_friend(self, change: Change) -> Outcome:
        target = _target(change)
        alias, ext = _profile(change.after)
        if stored.set_profile(self.store, change.uid, target, alias, ext):
            return None
        return f"'{change.uid}' and '{target}' are not friends; run plan again"

    def _set_friend_permission(self, change: Change) -> Outcome:
        name = change.after.get("friend_permission")
        if name not in stored.PERMISSIONS:
            raise ValueError(f"friend_permission: {name!r} is not one of {', '.join(stored.PERMISSIONS)}")
        missing = self._missing(change.uid)
        if missing is None:
            stored.set_permission(self.store, [change.uid], stored.PERMISSIONS[name])
        return missing

    def _missing(self, *uids: str) -> Outcome:
        for uid in uids:
            if not self.store.has_user(uid):
                return f"user '{uid}' does not exist"
        return None


def _profile(after: Any) -> tuple[str, dict[str, str]]:
    """The alias and ext a change writes, checked before anything is written."""
    alias, ext = after.get("alias") or "", dict(after.get("ext") or {})
    if not isinstance(alias, str) or not all(isinstance(v, str) for v in ext.values()):
        raise ValueError("a friend's alias and ext values must be text")
    return alias, ext


def _target(change: Change) -> str:
    if not change.target:
        raise ValueError("the change names no target user")
    return change.target
