"""Nexconn v4 access tokens: ``/v4/auth/access-token/issue`` and ``.../expire``.

Issuing a token registers the user on first use (the vendor has no separate create)
and updates the name and avatar otherwise. A development app refuses to register more
users than its limit (`rules.Rules.max_users`).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from ...model import User
from ...store import Store
from .. import storage
from .errors import NexconnError, bad_parameter, user_not_found
from .http import Field, Result, known_rows, uid_field, uids_field
from .routes import endpoint, ruled_endpoint
from .rules import USER_LIMIT_REACHED, Rules

USER_ID = re.compile(r"^[A-Za-z0-9]{1,64}$")


@ruled_endpoint(
    "/v4/auth/access-token/issue",
    userId=uid_field(),
    name=Field("string", required=True, nonempty=True, max_length=64),
    avatarUrl=Field("string"),
)
def issue_access_token(store: Store, body: dict[str, Any], rules: Rules) -> Result:
    uid, name, avatar = body["userId"], body["name"], body.get("avatarUrl")
    if not USER_ID.match(uid):
        raise bad_parameter("userId: letters and digits only, at most 64 characters")
    if avatar is not None and len(avatar.encode()) > 1024:
        raise bad_parameter("avatarUrl: at most 1024 bytes allowed")
    # Registration and the name update are one transaction, so a concurrent issue for
    # the same new user cannot insert it twice.
    with store.transaction():
        row = storage.user_row(store, uid)
        if row is None:
            _refuse_over_limit(store, rules)
            store.insert_users([User(uid, name=name, avatar=avatar)], owner=None)
        elif not row["active"]:
            raise user_not_found([uid])
        else:
            changes = {"name": name} if avatar is None else {"name": name, "avatar": avatar}
            store.update_user(uid, changes)
        token, _ = store.issue_token(uid)
    return {"userId": uid, "accessToken": token}


def _refuse_over_limit(store: Store, rules: Rules) -> None:
    """A development app holds at most ``rules.max_users`` registered users."""
    if rules.max_users is None:
        return
    registered = storage.count_users(store)
    if registered >= rules.max_users:
        raise NexconnError(
            403,
            USER_LIMIT_REACHED,
            f"The registered user limit of the development environment is reached "
            f"({registered} of {rules.max_users}); delete test users in the console or "
            "upgrade the app",
        )


@endpoint(
    "/v4/auth/access-token/expire",
    userIds=uids_field(20),
    expiresAt=Field("integer", required=True, minimum=0),
)
def expire_access_token(store: Store, body: dict[str, Any]) -> Result:
    rows = known_rows(store, body["userIds"])
    when = datetime.fromtimestamp(body["expiresAt"] / 1000, tz=UTC)
    with store.transaction():
        for uid in rows:
            store.update_user(uid, {"tokens_valid_after": when})
    return None
