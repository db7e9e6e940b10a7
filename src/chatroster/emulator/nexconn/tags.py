"""Nexconn v4 user tags: ``/v4/user/tag/batch/set`` and ``.../get`` on the users' tags."""

from __future__ import annotations

import re
from typing import Any

from ...store import Store
from .errors import bad_parameter
from .http import Field, Result, known_rows, uids_field
from .routes import endpoint

TAG = re.compile(r"^[\w-]+$")


@endpoint(
    "/v4/user/tag/batch/set",
    userIds=uids_field(1000),
    tags=Field("string[]", required=True, max_items=20),
)
def batch_set_user_tags(store: Store, body: dict[str, Any]) -> Result:
    for tag in body["tags"]:
        if not TAG.match(tag) or len(tag.encode()) > 40:
            raise bad_parameter(
                f"tags: {tag!r} is not allowed (letters, digits, '_' and '-', at most 40 bytes)"
            )
    rows = known_rows(store, body["userIds"])
    with store.transaction():
        for uid in rows:
            store.update_user(uid, {"tags": body["tags"]})
    return None


@endpoint("/v4/user/tag/batch/get", userIds=uids_field(50))
def batch_get_user_tags(store: Store, body: dict[str, Any]) -> Result:
    users = store.get_users(dict.fromkeys(body["userIds"]))
    return {
        "users": [
            {"userId": uid, "tags": list(users[uid].tags or ())}
            for uid in dict.fromkeys(body["userIds"])
            if uid in users
        ]
    }
