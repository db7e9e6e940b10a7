"""CometChat's wire format: the user object and its translation, the ownership marker,
the error envelope, and the per-call limits.

No I/O here: the client and the provider send what these functions build and read back
what they parse, so every rule of the vendor's format can be tested without a server.

The ownership marker lives in the user's metadata under ``@chatroster``:
``{"owner": "<owner>", "tokens_valid_after": <unix seconds>, "digest": "v1:..."}`` (the
digest of the declaration last applied, `chatroster.refresh`). It is stripped from
`User.metadata` on read and merged back into every metadata write, so the manifest's
metadata never sees it; the tokens watermark is kept there because CometChat cannot say
when a user's tokens were last flushed. A role carries the same marker in its own
metadata (``{"owner": "<owner>"}``), stripped from `Role.metadata` likewise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx

from ...errors import ProviderError
from ...http import request_target
from ...model import Role, User, thaw, utc
from ..base import Presence

MARKER_KEY = "@chatroster"
PER_PAGE = 1000
"""The largest page the vendor serves (users and blocked users)."""
BULK_MAX = 25
"""uids per deactivate or reactivate call."""
BLOCK_CHUNK = 100
"""Targets per block or unblock call (the vendor documents no limit; this stays modest)."""
REGIONS = ("us", "eu", "in")

#: Neutral field name -> the vendor's. Mirrored by `_user_from_api` and `_user_to_api`.
_API_FIELDS = {
    "name": "name",
    "avatar": "avatar",
    "link": "link",
    "role": "role",
    "status_message": "statusMessage",
    "metadata": "metadata",
    "tags": "tags",
}
#: Fields the vendor clears with ``unset`` rather than with an empty value.
_UNSETTABLE = ("avatar", "link")


# ------------------------------------------------------------------------- users


def _user_from_api(data: Mapping[str, Any], *, active: bool) -> User:
    """A vendor user object as a neutral `User`; the marker becomes owner and watermark."""
    metadata = dict(data.get("metadata") or {})
    marker = marker_from_api(metadata.pop(MARKER_KEY, None))
    watermark = marker.get("tokens_valid_after")
    return User(
        uid=data["uid"],
        name=data.get("name"),
        avatar=data.get("avatar"),
        link=data.get("link"),
        role=data.get("role"),
        status_message=data.get("statusMessage"),
        metadata=metadata or None,
        tags=tuple(data.get("tags") or ()),
        active=active,
        owner=marker.get("owner"),
        tokens_valid_after=None if watermark is None else _from_epoch(watermark),
        digest=marker.get("digest"),
    )


def _user_to_api(
    fields: Mapping[str, Any], marker: Mapping[str, Any], metadata: Mapping[str, Any] | None
) -> dict[str, Any]:
    """A neutral change's fields as a vendor body (create or update).

    ``metadata`` is what the user's metadata becomes when ``fields`` leaves it alone but
    the marker changes (adopt, watermark); ``None`` leaves metadata out entirely.
    """
    body: dict[str, Any] = {}
    unset: list[str] = []
    for name, value in fields.items():
        if name not in _API_FIELDS or name == "metadata":
            continue
        if name in _UNSETTABLE and not value:
            unset.append(_API_FIELDS[name])
        else:
            body[_API_FIELDS[name]] = list(value) if name == "tags" else value
    if "metadata" in fields:
        metadata = fields["metadata"] or {}
    if metadata is not None:
        # The marker rides on every metadata write: it must never be lost.
        body["metadata"] = {**thaw(metadata), MARKER_KEY: dict(marker)}
    if unset:
        body["unset"] = unset
    return body


# ------------------------------------------------------------------------- roles

ROLES_PER_PAGE = 100
"""One page holds every role: an app has at most 25."""


def _role_from_api(data: Mapping[str, Any]) -> Role:
    """A vendor role object as a neutral `Role`; the marker becomes its owner."""
    metadata = dict(data.get("metadata") or {})
    marker = marker_from_api(metadata.pop(MARKER_KEY, None))
    return Role(
        str(data["role"]),
        description=data.get("description") or None,
        metadata=metadata or None,
        owner=marker.get("owner"),
    )


def _role_to_api(
    fields: Mapping[str, Any], marker: Mapping[str, Any], metadata: Mapping[str, Any] | None
) -> dict[str, Any]:
    """A role change's fields as a vendor body (create or update); ``metadata`` is what
    the role's metadata becomes when ``fields`` leaves it alone but the marker changes
    (adopt), ``None`` leaves it out. An emptied description is unset."""
    body: dict[str, Any] = {}
    if "description" in fields:
        if fields["description"]:
            body["description"] = fields["description"]
        else:
            body["unset"] = ["description"]
    if "metadata" in fields:
        metadata = fields["metadata"] or {}
    if metadata is not None:
        body["metadata"] = {**thaw(metadata), MARKER_KEY: dict(marker)}  # the marker rides along
    return body


def marker_from_api(value: Any) -> dict[str, Any]:
    """The marker as stored, tolerating a foreign or damaged value (treated as none)."""
    if not isinstance(value, Mapping):
        return {}
    marker: dict[str, Any] = {}
    if isinstance(value.get("owner"), str):
        marker["owner"] = value["owner"]
    if isinstance(value.get("tokens_valid_after"), (int, float)):
        marker["tokens_valid_after"] = int(value["tokens_valid_after"])
    if isinstance(value.get("digest"), str) and value["digest"]:
        marker["digest"] = value["digest"]
    return marker


def _from_epoch(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def to_epoch(value: Any) -> int:
    """An ISO-8601 time from a change as unix seconds (UTC when no offset is given)."""
    try:
        return int(utc(datetime.fromisoformat(str(value))).timestamp())
    except ValueError:
        raise ProviderError(f"{value!r} is not an ISO-8601 time") from None


# ----------------------------------------------------------------------- answers


def body_of(response: httpx.Response, fallback: str) -> dict[str, Any]:
    """A success's JSON object; anything else (a proxy's HTML page, say) is an error."""
    body = _json(response)
    if not isinstance(body, dict):
        raise ProviderError(
            f"[cometchat] {request_target(response, fallback)} answered "
            f"{response.status_code} without a JSON object; check provider.url"
        )
    return body


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def error_envelope(response: httpx.Response) -> dict[str, Any]:
    """``error`` of the vendor's ``{"error": {"code", "message", "details"}}``, or {}."""
    body = _json(response)
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def describe_error(response: httpx.Response) -> str:
    """The vendor's words for a failed answer: ``HTTP 400 ERR_BAD_REQUEST: Failed to
    validate the data. (role: The role agent does not exist.)``."""
    error = error_envelope(response)
    code = str(error.get("code") or "")
    message = str(error.get("message") or response.reason_phrase or "")
    said = f"HTTP {response.status_code}" + (f" {code}" if code else "")
    said += f": {message}" if message else ""
    details = _details(error.get("details"))
    return f"{said} ({details})" if details else said


def _details(details: Any) -> str:
    """``details`` (field -> list of problems) as ``field: problem; field: problem``."""
    if not isinstance(details, Mapping):
        return ""
    parts = []
    for name, problems in details.items():
        listed = problems if isinstance(problems, list) else [problems]
        parts += [f"{name}: {problem}" for problem in listed]
    return "; ".join(parts)


# ---------------------------------------------------------------------- batching


def chunked(items: Sequence[str], size: int) -> list[list[str]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def presence_from_api(row: Mapping[str, Any]) -> Presence:
    """``status`` ("available" when connected, else "offline") and ``lastActiveAt``
    (UNIX seconds, left out when never active) of a user object."""
    status = row.get("status")
    online = None if status is None else status == "available"
    last = row.get("lastActiveAt")
    when = datetime.fromtimestamp(int(last), UTC) if isinstance(last, int) and last > 0 else None
    return Presence(online=online, last_active_at=when)
