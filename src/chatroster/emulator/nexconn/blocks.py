"""Nexconn v4 blocklist: ``/v4/user/blocklist/add``, ``remove`` and ``get`` on the
store's ``blocks`` relation.

``blocklist/get`` returns its next cursor as ``pageToken``, as the OpenAPI file says
("not ``next``"; the reference mentions a docs example naming it ``next``).
"""

from __future__ import annotations

from typing import Any

from ...store import Store
from .. import storage
from .errors import bad_parameter
from .http import Field, Result, active_row, cursor_bounds, cursor_page, uid_field, uids_field
from .routes import endpoint

MAX_BLOCKLIST = 3000


@endpoint("/v4/user/blocklist/add", userId=uid_field(), targetUserIds=uids_field(20))
def add_user_blocklist(store: Store, body: dict[str, Any]) -> Result:
    uid, targets = body["userId"], set(body["targetUserIds"])
    active_row(store, uid)
    current = store.relations("blocks", [uid]).get(uid, set())
    if len(current | targets) > MAX_BLOCKLIST:
        raise bad_parameter(f"targetUserIds: a blocklist holds at most {MAX_BLOCKLIST} users")
    store.add_relations("blocks", [(uid, target) for target in sorted(targets)])
    return None


@endpoint("/v4/user/blocklist/remove", userId=uid_field(), blockedUserIds=uids_field(20))
def remove_user_blocklist(store: Store, body: dict[str, Any]) -> Result:
    uid = body["userId"]
    active_row(store, uid)
    store.remove_relations("blocks", [(uid, target) for target in body["blockedUserIds"]])
    return None


@endpoint(
    "/v4/user/blocklist/get",
    userId=uid_field(),
    pageToken=Field("string"),
    pageSize=Field("integer", minimum=1, maximum=1000),
    order=Field("integer", minimum=0, maximum=1),
)
def get_user_blocklist(store: Store, body: dict[str, Any]) -> Result:
    uid = body["userId"]
    offset, size = cursor_bounds(body, 1000)
    active_row(store, uid)
    rows = storage.relation_page(
        store, "blocks", uid, offset=offset, limit=size + 1, newest_first=body.get("order", 0) == 0
    )
    targets, token = cursor_page(rows, offset, size)
    result: dict[str, Any] = {"blockedUserIds": targets}
    if token is not None:
        result["pageToken"] = token
    return result
