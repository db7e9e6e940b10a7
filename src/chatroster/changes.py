"""Changes: small immutable values that a plan is made of, in one deterministic order."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType
from typing import Any

from .model import freeze, thaw


class Action(str, Enum):
    """What a change does. The same words appear in code, plan text and plan JSON."""

    CREATE_ROLE = "create_role"
    UPDATE_ROLE = "update_role"
    CREATE_USER = "create_user"
    REACTIVATE_USER = "reactivate_user"
    ADOPT_USER = "adopt_user"
    UPDATE_USER = "update_user"
    UNBAN_USER = "unban_user"
    BAN_USER = "ban_user"
    REMOVE_BLOCK = "remove_block"
    ADD_BLOCK = "add_block"
    SET_WHITELIST_MODE = "set_whitelist_mode"
    REMOVE_WHITELIST = "remove_whitelist"
    ADD_WHITELIST = "add_whitelist"
    REMOVE_FRIEND = "remove_friend"
    ADD_FRIEND = "add_friend"
    UPDATE_FRIEND = "update_friend"
    SET_FRIEND_PERMISSION = "set_friend_permission"
    EXPIRE_TOKENS = "expire_tokens"
    DEACTIVATE_USER = "deactivate_user"
    DELETE_USER = "delete_user"
    DELETE_ROLE = "delete_role"

    def __str__(self) -> str:
        return self.value


# Why this order: users must exist (created, reactivated, adopted) before any relation
# names them; reactivation comes before adoption and updates because some platforms
# refuse to change a deactivated user; removals of blocks and whitelist entries go
# before additions so that a per-user cap is never hit half-way (friends too: 3000 per
# user on Nexconn); a friend's alias and ext are updated after the additions, because
# the other side of a friendship made in the same plan only exists once it is added;
# the friend permission comes with the friends, before deactivation; relations are settled
# before users are deactivated, because several platforms drop a deactivated user's
# relations or refuse to change them; deactivation comes before permanent deletion.
# The order is spelled out rather than taken from the enum's declaration, so that an
# action added to `Action` has to be placed here on purpose (a test checks that every
# action appears exactly once).
# Roles bracket the users: a user can only be given a role that exists, so roles are
# created (and adopted or updated) before any user is created or updated; a role is
# deleted last, once the users that held it were moved to another role or deleted.
ORDER: tuple[Action, ...] = (
    Action.CREATE_ROLE,
    Action.UPDATE_ROLE,
    Action.CREATE_USER,
    Action.REACTIVATE_USER,
    Action.ADOPT_USER,
    Action.UPDATE_USER,
    Action.UNBAN_USER,
    Action.BAN_USER,
    Action.REMOVE_BLOCK,
    Action.ADD_BLOCK,
    Action.SET_WHITELIST_MODE,
    Action.REMOVE_WHITELIST,
    Action.ADD_WHITELIST,
    Action.REMOVE_FRIEND,
    Action.ADD_FRIEND,
    Action.UPDATE_FRIEND,
    Action.SET_FRIEND_PERMISSION,
    Action.EXPIRE_TOKENS,
    Action.DEACTIVATE_USER,
    Action.DELETE_USER,
    Action.DELETE_ROLE,
)
_RANK = {action: rank for rank, action in enumerate(ORDER)}

#: Actions that take something away from a user; output makes them stand out.
DESTRUCTIVE = frozenset({Action.DEACTIVATE_USER, Action.DELETE_USER, Action.UNBAN_USER, Action.DELETE_ROLE})

#: Actions on a role rather than a user: their ``uid`` is the role's id.
ROLE_ACTIONS = frozenset({Action.CREATE_ROLE, Action.UPDATE_ROLE, Action.DELETE_ROLE})


@dataclass(frozen=True)
class Change:
    """One change to one user (and, for blocks, whitelist entries and friends, one
    ``target``), or to one role (`ROLE_ACTIONS`: ``uid`` is then the role's id, which
    follows the same rules as a uid).

    ``before`` and ``after`` hold only what changes: for ``update_user`` the changed
    fields, for relations the presence of the relation.
    """

    action: Action
    uid: str
    target: str | None = None
    before: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    after: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    note: str | None = None
    """A short explanation shown with the change (adoption, ban renewal, ...)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "before", freeze(self.before))
        object.__setattr__(self, "after", freeze(self.after))

    @property
    def sort_key(self) -> tuple[int, str, str]:
        return (_RANK[self.action], self.uid, self.target or "")

    @property
    def key(self) -> str:
        """A stable identity: one change per action, uid and target in a plan."""
        return f"{self.action.value}:{self.uid}" + (f":{self.target}" if self.target else "")

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"action": self.action.value, "uid": self.uid}
        if self.target is not None:
            data["target"] = self.target
        data["before"] = thaw(self.before)
        data["after"] = thaw(self.after)
        if self.note:
            data["note"] = self.note
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Change:
        return cls(
            action=Action(data["action"]),
            uid=data["uid"],
            target=data.get("target"),
            before=data.get("before", {}),
            after=data.get("after", {}),
            note=data.get("note"),
        )


def ordered(changes: list[Change]) -> tuple[Change, ...]:
    """The one place changes are sorted (see ``ORDER`` for why)."""
    return tuple(sorted(changes, key=lambda change: change.sort_key))
