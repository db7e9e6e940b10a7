"""Nexconn legacy user whitelist: ``/user/whitesetting/*.json`` and
``/user/whitelist/*.json`` on the store's ``whitelist`` relation; the per-user switch
is ``users.whitelist_mode``.

v4 has no user allowlist, so the vendor keeps serving these older endpoints on the
same hosts, with the older conventions: a form-encoded body where a list is the same
key repeated, the same signing headers but ``Timestamp`` in seconds, and success as
``{"code": 200, ...}`` with the payload at the top level. Errors keep the v4 body.
Reading the form and the legacy envelope are in `http.py`, the paths in `routes.py`.
"""

from __future__ import annotations

from typing import Any

from ...store import Store
from .. import storage
from .errors import bad_parameter, user_not_found
from .http import Form, active_row, decode_cursor, encode_cursor, integer, many, one

MAX_WHITELIST = 3000
MAX_QUERY_SIZE = 1000


def set_white_setting(store: Store, form: Form) -> dict[str, Any]:
    uids = many(form, "userId")
    setting = integer(one(form, "whiteSetting"), "whiteSetting", 0, 1)
    missing = [uid for uid in uids if storage.user_row(store, uid) is None]
    if missing:
        raise user_not_found(missing)
    with store.transaction():
        for uid in uids:
            store.update_user(uid, {"whitelist_mode": setting == 1})
    return {}


def query_white_setting(store: Store, form: Form) -> dict[str, Any]:
    uid = one(form, "userId") or ""
    row = active_row(store, uid)
    return {"userId": uid, "whiteSetting": int(row["whitelist_mode"])}


def add_whitelist(store: Store, form: Form) -> dict[str, Any]:
    uid = one(form, "userId") or ""
    targets = set(many(form, "whiteUserId"))
    active_row(store, uid)
    current = store.relations("whitelist", [uid]).get(uid, set())
    if len(current | targets) > MAX_WHITELIST:
        raise bad_parameter(f"whiteUserId: a whitelist holds at most {MAX_WHITELIST} users")
    store.add_relations("whitelist", [(uid, target) for target in sorted(targets)])
    return {}


def remove_whitelist(store: Store, form: Form) -> dict[str, Any]:
    uid = one(form, "userId") or ""
    targets = many(form, "whiteUserId")
    active_row(store, uid)
    store.remove_relations("whitelist", [(uid, target) for target in targets])
    return {}


def query_whitelist(store: Store, form: Form) -> dict[str, Any]:
    uid = one(form, "userId") or ""
    token = one(form, "pageToken", required=False)
    size = integer(one(form, "size", required=False), "size", 1, MAX_QUERY_SIZE)
    size = size or MAX_QUERY_SIZE
    active_row(store, uid)
    offset = decode_cursor(token) if token else 0
    # One extra row tells whether another page follows.
    users = storage.relation_page(store, "whitelist", uid, offset=offset, limit=size + 1)
    result: dict[str, Any] = {"users": users[:size]}
    if len(users) > size:
        result["next"] = encode_cursor(offset + size)
    return result
