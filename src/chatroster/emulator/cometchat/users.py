"""CometChat v3 users: create, get, list, update, delete, bulk deactivate and reactivate.

Translation only: the store holds the meaning. A NULL role is the vendor's ``default``;
metadata is served exactly as stored (the product keeps its ownership marker there on
CometChat; the store's ``owner`` column is the local platform's and is never exposed).
"""

from __future__ import annotations

import json
from typing import Any

from ...model import User
from ...store import Store
from .. import storage
from .errors import ApiError, uid_not_found
from .http import (
    Body,
    Call,
    Fields,
    action_result,
    active_user_row,
    loads,
    ok,
    read_paging,
)

DEFAULT_ROLE = "default"
NAME_MAX = 100
URL_MAX = 3000
TAGS_MAX = 25
TAG_MAX = 100
BULK_MAX = 25
METADATA_MAX_BYTES = 5 * 1024
"""The reference's two pages disagree (5 KB; about 1.6 K characters of JSON): the
emulator refuses what both call too large, metadata over 5 KB as compact JSON."""
UNSETTABLE = ("avatar", "link", "metadata")


# ------------------------------------------------------------------ translation


def user_json(row: dict[str, Any], *, with_tags: bool = False) -> dict[str, Any]:
    """A stored record as the vendor's user object; unset optional fields are left out."""
    user: dict[str, Any] = {"uid": row["uid"], "name": row["name"]}
    for key, column in (("avatar", "avatar"), ("link", "link")):
        if row[column] is not None:
            user[key] = row[column]
    if row["metadata"] is not None:
        user["metadata"] = loads(row["metadata"])
    user["status"] = "offline"  # the emulator has no connections, so no one is online
    if row["status_message"] is not None:
        user["statusMessage"] = row["status_message"]
    user["role"] = row["role"] or DEFAULT_ROLE
    user["createdAt"] = row["created_at"]
    if row["updated_at"] != row["created_at"]:
        user["updatedAt"] = row["updated_at"]
    if not row["active"] and row["deactivated_at"] is not None:
        # The SDK's field; lets a withDeactivated list tell deactivated users apart.
        user["deactivatedAt"] = row["deactivated_at"]
    if with_tags:
        user["tags"] = loads(row["tags"])
    return user


def _read_profile(fields: Fields, *, creating: bool) -> dict[str, Any]:
    """The profile fields present in the body, under the `User` field names."""
    read: dict[str, Any] = {
        "name": fields.string("name", max_len=NAME_MAX, required=creating),
        "avatar": fields.string("avatar", max_len=URL_MAX),
        "link": fields.string("link", max_len=URL_MAX),
        "role": fields.identifier("role"),
        "status_message": fields.string("statusMessage"),
        "metadata": fields.obj("metadata"),
        "tags": fields.strings("tags", max_items=TAGS_MAX, max_len=TAG_MAX),
    }
    metadata = read["metadata"]
    if metadata is not None and metadata_size(metadata) > METADATA_MAX_BYTES:
        fields.fail(
            "metadata", f"The metadata may not be greater than {METADATA_MAX_BYTES // 1024} kilobytes."
        )
        read["metadata"] = None
    # None: absent, null or invalid (then recorded in `fields`); either way no change.
    found = {key: value for key, value in read.items() if value is not None}
    if not creating and "name" in found and not found["name"]:
        fields.fail("name", "The name field is required.")  # a user always has a name
    return found


def metadata_size(metadata: Any) -> int:
    """Bytes of the metadata as compact JSON, the form the size limit is measured on."""
    return len(json.dumps(metadata, separators=(",", ":"), ensure_ascii=False).encode())


def _check_role(store: Store, fields: Fields, role: str | None) -> None:
    # The vendor answers an unknown role with ERR_BAD_REQUEST, not ERR_ROLE_NOT_FOUND.
    if role is not None and role != DEFAULT_ROLE and storage.get_role(store, role) is None:
        fields.fail("role", f"The role {role} does not exist.")


# ------------------------------------------------------------------ single user


def create_user(store: Store, call: Call) -> Body:
    fields = Fields(call.json())
    uid = fields.identifier("uid", required=True)
    profile = _read_profile(fields, creating=True)
    with_token = fields.boolean("withAuthToken")
    _check_role(store, fields, profile.get("role"))
    fields.done()
    assert uid is not None  # done() raised otherwise
    token = None
    with store.transaction():  # the existence check and the insert are one step
        if storage.user_row(store, uid) is not None:  # deactivated users still hold their uid
            raise ApiError(
                400,
                "ERR_UID_ALREADY_EXISTS",
                f"The UID {uid} already exists. Please use a different UID.",
            )
        store.insert_users([User(uid=uid, **profile)])
        if with_token:
            token, _ = store.issue_token(uid)
    data = user_json(_row(store, uid), with_tags=True)
    if token is not None:
        data["authToken"] = token
    return ok(data)


def get_user(store: Store, call: Call) -> Body:
    uid = call.uid()
    user = user_json(active_user_row(store, uid))
    viewer = call.headers.get("onBehalfOf")
    if viewer:
        user.update(_perspective(store, viewer.lower(), uid))
    return ok(user)


def _perspective(store: Store, viewer: str, uid: str) -> dict[str, Any]:
    """The block fields the vendor adds when a user is viewed as another user."""
    active_user_row(store, viewer)
    by_me, by_them = storage.block_pair(store, viewer, uid)
    fields: dict[str, Any] = {"blockedByMe": by_me is not None, "hasBlockedMe": by_them is not None}
    if by_me is not None:
        fields["blockedByMeAt"] = by_me
    if by_me is not None or by_them is not None:
        fields["blockedAt"] = max(t for t in (by_me, by_them) if t is not None)
    fields["conversationId"] = conversation_id(viewer, uid)
    return fields


def conversation_id(uid: str, other: str) -> str:
    first, second = sorted((uid, other))
    return f"{first}_user_{second}"


def update_user(store: Store, call: Call) -> Body:
    uid = call.uid()
    active_user_row(store, uid)
    fields = Fields(call.json())
    changes = _read_profile(fields, creating=False)
    unset = fields.strings("unset", choices=UNSETTABLE) or []
    for name in unset:
        if name in changes:
            fields.fail("unset", f"The {name} cannot be set and unset in one request.")
    _check_role(store, fields, changes.get("role"))
    fields.done()
    changes.update({name: None for name in unset})
    if not store.update_user(uid, changes):
        raise uid_not_found(uid)  # permanently deleted meanwhile
    return ok(user_json(_row(store, uid), with_tags=True))


def delete_user(store: Store, call: Call) -> Body:
    """``permanent: false`` (the default) deactivates; ``true`` purges the user."""
    uid = call.uid()
    fields = Fields(call.json())
    # A JSON boolean: the OpenAPI file types it boolean (its default "false" is a string,
    # a slip in that file), as does the reference.
    permanent = fields.boolean("permanent")
    fields.done()
    row = storage.user_row(store, uid)
    if row is None:
        raise uid_not_found(uid)
    # A deactivated user can still be purged: deactivation comes before deletion.
    if permanent:
        store.delete_users([uid])
    elif row["active"]:
        store.set_active([uid], False)
    return ok(action_result(f"User with {uid} has been deleted successfully."))


def _row(store: Store, uid: str) -> dict[str, Any]:
    row = storage.user_row(store, uid)
    if row is None:
        raise uid_not_found(uid)
    return row


# ------------------------------------------------------------------------ lists


def list_users(store: Store, call: Call) -> Body:
    query = Fields(call.query)
    paging = read_paging(query)
    only_deactivated = query.query_bool("onlyDeactivated")
    with_deactivated = query.query_bool("withDeactivated")
    with_tags = query.query_bool("withTags")
    search = call.query.get("searchKey") or None
    search_in = query.query_list("searchIn", choices=("uid", "name")) or ["uid", "name"]
    roles = [role.lower() for role in query.query_list("role") + query.query_list("roles")]
    tags = query.query_list("tags")
    status = query.query_choice("status", ("", "available", "offline"), "")
    query.done()
    active = False if only_deactivated else (None if with_deactivated else True)
    if status == "available":  # nobody is online in the emulator
        return ok([], paging.meta([], 0))
    rows, total = storage.user_rows_page(
        store,
        offset=paging.offset,
        limit=paging.per_page,
        active=active,
        search=search,
        search_in=search_in,
        roles=roles,
        unset_role=DEFAULT_ROLE,
        any_tags=tags,
    )
    users = [user_json(row, with_tags=with_tags) for row in rows]
    return ok(users, paging.meta(users, total))


def _bulk_uids(call: Call, name: str) -> list[str]:
    fields = Fields(call.json())
    uids = fields.strings(name, max_items=BULK_MAX, required=True)
    fields.done()
    return list(dict.fromkeys(uid.lower() for uid in uids or ()))


def deactivate_users(store: Store, call: Call) -> Body:
    """Answers with every named user that is now deactivated, so retries read the same."""
    uids = _bulk_uids(call, "uidsToDeactivate")
    found = store.get_users(uids)
    store.set_active([uid for uid in uids if found.get(uid) and found[uid].active], False)
    return ok({"deactivatedUids": [uid for uid in uids if uid in found]})


def reactivate_users(store: Store, call: Call) -> Body:
    """``nonDeactivatedUids`` is the vendor's name for the users that are active again."""
    uids = _bulk_uids(call, "uidsToActivate")
    found = store.get_users(uids)
    store.set_active([uid for uid in uids if found.get(uid) and not found[uid].active], True)
    return ok({"nonDeactivatedUids": [uid for uid in uids if uid in found]})
