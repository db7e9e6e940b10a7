"""Nexconn v4 users: get, update, connection status, soft-delete, restore and the list
of soft-deleted users. Soft-delete is the store's deactivation, and it wipes what the
vendor deletes: name, avatar, tags, hosted profile, the user's blocklist and whitelist
(and whitelist mode), the token watermark. A restore brings back the id alone.

Online status is served at ``/v4/user/connection-status/get`` only, as in the OpenAPI
file (older docs: ``/v4/user/online-status/get``).
"""

from __future__ import annotations

import uuid
from typing import Any

from ...store import Store
from .. import storage
from .errors import bad_parameter
from .http import (
    Field,
    Result,
    active_row,
    format_time,
    known_rows,
    page_bounds,
    page_fields,
    uid_field,
    uids_field,
)
from .routes import endpoint

RESTORE_DELAY = 3600
"""Seconds after a soft-delete before the vendor allows a restore."""


@endpoint("/v4/user/get", userId=uid_field())
def get_user(store: Store, body: dict[str, Any]) -> Result:
    row = active_row(store, body["userId"])
    return {
        "name": row["name"],
        "avatarUrl": row["avatar"] or "",
        "createdAt": format_time(row["created_at"]),
    }


@endpoint(
    "/v4/user/update",
    userId=uid_field(),
    name=Field("string", nonempty=True, max_length=64),
    avatarUrl=Field("string"),
)
def update_user(store: Store, body: dict[str, Any]) -> Result:
    uid = body["userId"]
    if len(body.get("avatarUrl", "").encode()) > 1024:
        raise bad_parameter("avatarUrl: at most 1024 bytes allowed")
    active_row(store, uid)
    changes = {"name": body.get("name"), "avatar": body.get("avatarUrl")}
    store.update_user(uid, {key: value for key, value in changes.items() if value is not None})
    return None


@endpoint("/v4/user/connection-status/get", userId=uid_field())
def get_connection_status(store: Store, body: dict[str, Any]) -> Result:
    active_row(store, body["userId"])
    return {"status": "0"}  # nobody connects to the emulator: always offline


# ----------------------------------------------------------- soft-delete and restore


def _operation_id() -> str:
    return uuid.uuid4().hex


#: What a soft-delete wipes: "all data associated with the user ID is deleted" and a
#: restore brings back the id alone ("personal data cannot be recovered").
WIPED: dict[str, Any] = {
    "name": "",
    "avatar": None,
    "tags": (),
    "profile": None,
    "whitelist_mode": False,
    "tokens_valid_after": None,
}


@endpoint("/v4/user/soft-delete", userIds=uids_field(100))
def soft_delete_users(store: Store, body: dict[str, Any]) -> Result:
    rows = known_rows(store, body["userIds"])
    # Users already deleted keep their deletion time (and so their restore delay).
    deleting = [uid for uid, row in rows.items() if row["active"]]
    with store.transaction():
        for uid in deleting:
            store.update_user(uid, WIPED)
        store.remove_relations("blocks", _own_entries(store, "blocks", deleting))
        store.remove_relations("whitelist", _own_entries(store, "whitelist", deleting))
        store.set_active(deleting, False)
    return {"operationId": _operation_id()}


def _own_entries(store: Store, table: str, uids: list[str]) -> list[tuple[str, str]]:
    """The user's own list (whom it blocks or whitelists); others' lists keep naming it."""
    return [(uid, target) for uid, targets in store.relations(table, uids).items() for target in targets]


@endpoint("/v4/user/restore", userIds=uids_field(100))
def restore_users(store: Store, body: dict[str, Any]) -> Result:
    rows = known_rows(store, body["userIds"])
    deleted = {uid: row for uid, row in rows.items() if not row["active"]}
    allowed_after = store.now() - RESTORE_DELAY
    recent = [uid for uid, row in deleted.items() if (row["deactivated_at"] or 0) > allowed_after]
    if recent:
        raise bad_parameter(
            "userIds: restore is not allowed within 1 hour of the soft-delete: " + ", ".join(recent)
        )
    store.set_active(deleted, True)
    return {"operationId": _operation_id()}


@endpoint("/v4/user/soft-deleted/list", **page_fields(50))
def list_soft_deleted_users(store: Store, body: dict[str, Any]) -> Result:
    offset, size = page_bounds(body, 50)
    return {"userIds": storage.uids_page(store, offset=offset, limit=size, active=False)}
