"""Nexconn v4 friends (information hosting, reference §6): ``/v4/friend/add``,
``remove``, ``remove-all``, ``profile/set``, ``list``, ``relationship/get`` and
``permission/set``/``get``, on the store's ``friends`` and ``friend_permissions``
tables (`chatroster.store.friends`).

Friendship is mutual, as the vendor's ``relationship/get`` has it (1 not friends, 4
mutual): ``add`` makes both users friends and ``remove`` ends it for both; each side
keeps its own alias and ext. ``add`` with ``action: 2`` adds directly; with ``action:
1`` (the default) it obeys the target's permission: ``anyone`` adds, ``approval``
leaves a request the target has to accept in the app (nothing is added here), and
``nobody`` is refused. ``permission/set`` and ``get`` take at most 100 users a call
(the reference gives no figure; 100 is the vendor's usual batch). The removal endpoint
is served at ``/v4/friend/remove``, the OpenAPI's path (the vendor's docs page also
names ``/v4/friend/delete``, which is not served).
"""

from __future__ import annotations

import json
import re
from typing import Any

from ...store import Store
from ...store import friends as stored
from .errors import bad_parameter
from .http import Field, Result, active_row, cursor_bounds, cursor_page, known_rows, uid_field, uids_field
from .routes import endpoint

MAX_FRIENDS = 3000
MAX_ALIAS = 64
MAX_EXT_KEYS = 10
MAX_EXT_VALUE = 256
MAX_EXTRA = 128
EXT_KEY = re.compile(r"^ext_[A-Za-z0-9_]{1,28}$")

ADD_WITH_PERMISSION, ADD_DIRECTLY = 1, 2
NOT_FRIENDS, MUTUAL = 1, 4


@endpoint(
    "/v4/friend/add",
    userId=uid_field(),
    targetId=uid_field(),
    action=Field("integer", minimum=ADD_WITH_PERMISSION, maximum=ADD_DIRECTLY),
    extra=Field("string", max_length=MAX_EXTRA),
)
def add_friend(store: Store, body: dict[str, Any]) -> Result:
    uid, target = body["userId"], body["targetId"]
    if uid == target:
        raise bad_parameter("targetId: a user cannot add itself as a friend")
    active_row(store, uid)
    active_row(store, target)
    if body.get("action", ADD_WITH_PERMISSION) == ADD_WITH_PERMISSION:
        permission = stored.permissions(store, [target]).get(target, stored.DEFAULT_PERMISSION)
        if permission == stored.PERMISSIONS["nobody"]:
            raise bad_parameter(f"targetId: '{target}' accepts no friend requests")
        if permission == stored.PERMISSIONS["approval"]:
            return None  # a request for the target to accept in the app
    if target in stored.friends(store, [uid]).get(uid, {}):
        return None  # friends already: adding again changes nothing
    for side in (uid, target):
        if stored.count(store, side) >= MAX_FRIENDS:
            raise bad_parameter(f"'{side}' has {MAX_FRIENDS} friends already, the most a user can have")
    stored.add(store, uid, target)
    return None


@endpoint("/v4/friend/remove", userId=uid_field(), targetIds=uids_field(100))
def remove_friends(store: Store, body: dict[str, Any]) -> Result:
    uid = body["userId"]
    active_row(store, uid)
    stored.remove(store, uid, body["targetIds"])
    return None


@endpoint("/v4/friend/remove-all", userId=uid_field())
def remove_all_friends(store: Store, body: dict[str, Any]) -> Result:
    uid = body["userId"]
    active_row(store, uid)
    stored.remove_all(store, uid)
    return None


@endpoint(
    "/v4/friend/profile/set",
    userId=uid_field(),
    targetId=uid_field(),
    alias=Field("string", max_length=MAX_ALIAS),
    friendExtProfile=Field("string-map", max_items=MAX_EXT_KEYS),
)
def set_friend_profile(store: Store, body: dict[str, Any]) -> Result:
    uid, target = body["userId"], body["targetId"]
    active_row(store, uid)
    ext = body.get("friendExtProfile", {})
    for key, value in ext.items():
        if not EXT_KEY.match(key):
            raise bad_parameter(f"friendExtProfile: '{key}' is not ext_ and 1 to 28 letters, digits or '_'")
        if not isinstance(value, str) or len(value) > MAX_EXT_VALUE:
            raise bad_parameter(f"friendExtProfile.{key}: text of at most {MAX_EXT_VALUE} characters")
    # Omitting the alias clears it (the OpenAPI: "Omit this field to clear the existing alias").
    if not stored.set_profile(store, uid, target, body.get("alias", ""), ext):
        raise bad_parameter(f"targetId: '{target}' is not a friend of '{uid}'")
    return None


@endpoint(
    "/v4/friend/list",
    userId=uid_field(),
    pageToken=Field("string"),
    pageSize=Field("integer", minimum=1, maximum=100),
    order=Field("integer", minimum=0, maximum=1),
)
def list_friends(store: Store, body: dict[str, Any]) -> Result:
    uid = body["userId"]
    offset, size = cursor_bounds(body, 50)
    active_row(store, uid)
    rows = stored.page(store, uid, offset=offset, limit=size + 1, newest_first=body.get("order", 0) == 1)
    friends, token = cursor_page(rows, offset, size)
    result: dict[str, Any] = {
        "totalCount": stored.count(store, uid),
        "friends": [_friend_to_api(row) for row in friends],
    }
    if token is not None:
        result["pageToken"] = token
    return result


def _friend_to_api(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "userId": row["target"],
        "name": row["name"] or "",
        "alias": row["alias"],
        "friendExtProfile": json.loads(row["ext"]),
        "addedAt": int(row["created_at"]) * 1000,
    }


@endpoint("/v4/friend/relationship/get", userId=uid_field(), targetIds=uids_field(20))
def get_friend_relationships(store: Store, body: dict[str, Any]) -> Result:
    uid = body["userId"]
    active_row(store, uid)
    friends = stored.friends(store, [uid]).get(uid, {})
    return {
        "friendships": [
            {"userId": target, "result": MUTUAL if target in friends else NOT_FRIENDS}
            for target in dict.fromkeys(body["targetIds"])
        ]
    }


@endpoint(
    "/v4/friend/permission/set",
    userIds=uids_field(100),
    permissionType=Field("integer", required=True, minimum=1, maximum=3),
)
def set_friend_permission(store: Store, body: dict[str, Any]) -> Result:
    uids = list(dict.fromkeys(body["userIds"]))
    known_rows(store, uids)
    stored.set_permission(store, uids, body["permissionType"])
    return None


@endpoint("/v4/friend/permission/get", userIds=uids_field(100))
def get_friend_permission(store: Store, body: dict[str, Any]) -> Result:
    uids = list(dict.fromkeys(body["userIds"]))
    known_rows(store, uids)
    found = stored.permissions(store, uids)
    return {
        "permissions": [
            {"userId": uid, "permissionType": found.get(uid, stored.DEFAULT_PERMISSION)} for uid in uids
        ]
    }
