"""Nexconn v4 bans: ``/v4/user/ban``, ``unban`` and ``ban/list`` on the store's bans.

A ban's expiry is shown in the vendor's ``YYYY-MM-DD HH:MM:SS`` format (UTC).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ...store import Store
from .http import Field, Result, format_time, known_rows, page_bounds, page_fields, uids_field
from .routes import endpoint

MAX_BAN_MINUTES = 43200


@endpoint(
    "/v4/user/ban",
    userIds=uids_field(20),
    durationMinutes=Field("integer", required=True, minimum=1, maximum=MAX_BAN_MINUTES),
)
def ban_users(store: Store, body: dict[str, Any]) -> Result:
    rows = known_rows(store, body["userIds"])
    until = store.now() + body["durationMinutes"] * 60
    store.ban(rows, datetime.fromtimestamp(until, tz=UTC))
    return None


@endpoint("/v4/user/unban", userIds=uids_field(20))
def unban_users(store: Store, body: dict[str, Any]) -> Result:
    store.unban(known_rows(store, body["userIds"]))
    return None


@endpoint("/v4/user/ban/list", **page_fields(1000))
def list_banned_users(store: Store, body: dict[str, Any]) -> Result:
    # Without a page the vendor returns the first 1000 bans; latest expiry first.
    offset, size = page_bounds(body, 50 if "page" in body else 1000)
    bans = store.bans()

    def expiry(uid: str) -> tuple[float, str]:
        until = bans[uid].until
        return (until.timestamp() if until else float("inf"), uid)

    ordered = sorted(bans, key=expiry, reverse=True)[offset : offset + size]
    return {
        "bannedUsers": [
            {"userId": uid, "banExpiresAt": format_time(_epoch(bans[uid].until))} for uid in ordered
        ]
    }


def _epoch(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp())
