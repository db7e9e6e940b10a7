"""CometChat v3 blocked users: ``/users/{uid}/blockedusers`` on the store's ``blocks``.

The blocker named in the path must be an active user (deactivated users answer as not
found, as everywhere under ``/users/{uid}``). Targets only need to exist: blocks are kept
through a deactivation, so the list shows them whatever the target's state.
"""

from __future__ import annotations

from typing import Any

from ...store import Store
from .. import storage
from .errors import ApiError
from .http import (
    Body,
    Call,
    Fields,
    active_user_row,
    ok,
    read_paging,
)
from .users import conversation_id, user_json

DIRECTIONS = ("both", "blockedByMe", "hasBlockedMe")


def _targets(store: Store, call: Call) -> tuple[str, list[str]]:
    """The blocker and the distinct target uids of a block or unblock call."""
    uid = call.uid()
    active_user_row(store, uid)
    fields = Fields(call.json())
    targets = fields.strings("blockedUids", required=True)
    fields.done()
    return uid, list(dict.fromkeys(target.lower() for target in targets or ()))


def _outcomes(uid: str, targets: list[str], found: set[str], verb: str) -> dict[str, Any]:
    """The vendor's answer: per target uid ``{success, message}``."""
    return {
        target: {
            "success": True,
            "message": f"The user with UID {uid} has {verb} user with UID {target} successfully.",
        }
        if target in found
        else {"success": False, "message": f"The UID {target} does not exist."}
        for target in targets
    }


def block_users(store: Store, call: Call) -> Body:
    """A missing target fails alone; the others are blocked."""
    uid, targets = _targets(store, call)
    if uid in targets:  # refused before anything is written
        raise ApiError(400, "ERR_CANNOT_BLOCK_SELF", f"The user {uid} cannot block themselves.")
    found = set(store.get_users(targets))
    store.add_relations("blocks", [(uid, target) for target in targets if target in found])
    return ok(_outcomes(uid, targets, found, "blocked"))


def unblock_users(store: Store, call: Call) -> Body:
    """Unblocking a user that is not blocked succeeds: the end state is what was asked."""
    uid, targets = _targets(store, call)
    found = set(store.get_users(targets))
    store.remove_relations("blocks", [(uid, target) for target in targets if target in found])
    return ok(_outcomes(uid, targets, found, "unblocked"))


def list_blocked_users(store: Store, call: Call) -> Body:
    """``direction`` and ``searchKey`` are the SDK's parameters; the REST spec lists only
    perPage and page, and the SDK's default direction is ``both``."""
    uid = call.uid()
    active_user_row(store, uid)
    query = Fields(call.query)
    paging = read_paging(query)
    direction = query.query_choice("direction", DIRECTIONS, "both")
    query.done()
    rows, total = storage.block_rows_page(
        store,
        uid,
        direction=direction,
        offset=paging.offset,
        limit=paging.per_page,
        search=call.query.get("searchKey") or None,
    )
    users = [_blocked_user_json(uid, row) for row in rows]
    return ok(users, paging.meta(users, total))


def _blocked_user_json(viewer: str, row: dict[str, Any]) -> dict[str, Any]:
    user = user_json(row)
    by_me, by_them = row["blocked_by_me_at"], row["has_blocked_me_at"]
    user["blockedByMe"] = by_me is not None
    user["hasBlockedMe"] = by_them is not None
    if by_me is not None:
        user["blockedByMeAt"] = by_me
    user["blockedAt"] = max(t for t in (by_me, by_them) if t is not None)
    user["conversationId"] = conversation_id(viewer, row["uid"])
    return user
