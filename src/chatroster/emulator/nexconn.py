"""Nexconn Chat Server API v4 (user endpoints), translated onto the store.

Every endpoint is a signed JSON POST. A handler gets the store and the checked body
and returns the ``result`` object of a success (or None for a code-only answer); it
raises `NexconnError` for anything the vendor refuses. The store holds the meaning:
soft-delete is deactivation, blocklists are the ``blocks`` relation, tags and the
hosted profile are user fields.

Where the reference (``reference/nexconn-api.md``) and the vendor's OpenAPI file
(``conformance/nexconn/openapi.yaml``) disagree, this module follows the OpenAPI file:

- ``blocklist/get`` returns its next cursor as ``pageToken`` (the reference also
  mentions a docs example naming it ``next``; the OpenAPI says "not ``next``").
- Online status is served at ``/v4/user/connection-status/get`` only (older docs:
  ``/v4/user/online-status/get``).
- A ``profile/set`` rejection of one profile key is answered with HTTP 200 and a body
  ``{"code": 1002, "errorMessage": ..., "profileKey": <key>}``: the OpenAPI puts
  ``profileKey`` ("the failed profile key when the update fails") in the 200 response.
- The OpenAPI defines no error codes at all. Errors use the vendor's documented
  server status codes (1002 parameter, 1004 signature, 1008 rate limit, 1000
  internal, 404 unknown address) and, for a user that does not exist or is
  soft-deleted, 24366 "The user does not exist." from the vendor's published error
  table, with HTTP 404.
- Times the OpenAPI types as plain strings (``createdAt``, ``banExpiresAt``) use the
  vendor's ``YYYY-MM-DD HH:MM:SS`` format (in UTC), the format its spec gives for the
  other ban and mute expiry times.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ..model import User
from ..store import Store
from . import storage
from .signing import SignatureVerifier

# Status codes of the vendor (the same numbers the legacy API used).
OK = 0
INTERNAL_ERROR = 1000
BAD_PARAMETER = 1002
BAD_SIGNATURE = 1004
RATE_LIMITED = 1008
NOT_FOUND = 404
USER_NOT_FOUND = 24366

USER_ID = re.compile(r"^[A-Za-z0-9]{1,64}$")
TAG = re.compile(r"^[\w-]+$")
EXT_KEY = re.compile(r"^ext_[A-Za-z0-9]+$")
MAX_BAN_MINUTES = 43200
MAX_BLOCKLIST = 3000
RESTORE_DELAY = 3600
"""Seconds after a soft-delete before the vendor allows a restore."""

FOREVER = "9999-12-31 23:59:59"
"""How a ban without end (possible in a store the local provider also writes) is shown."""

Result = dict[str, Any] | None


class NexconnError(Exception):
    """A refusal, rendered as the vendor's error body."""

    def __init__(
        self, status: int, code: int, message: str, extra: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = dict(extra or {})

    def response(self) -> Response:
        return error_response(self.status, self.code, self.message, **self.extra)


def error_response(http_status: int, code: int, message: str, **extra: Any) -> Response:
    """The vendor's error body: ``{"code": <int>, "errorMessage": <text>}``."""
    return JSONResponse({"code": code, "errorMessage": message, **extra}, status_code=http_status)


def bad_parameter(message: str) -> NexconnError:
    return NexconnError(400, BAD_PARAMETER, message)


def user_not_found(uids: Sequence[str]) -> NexconnError:
    names = ", ".join(uids)
    return NexconnError(404, USER_NOT_FOUND, f"The user does not exist: {names}")


# --------------------------------------------------------------------- request fields

Kind = Literal["string", "integer", "string[]", "object", "string-map"]


@dataclass(frozen=True)
class Field:
    """One body field: its JSON type, whether it is required, and the vendor's limits."""

    kind: Kind
    required: bool = False
    max_items: int | None = None
    minimum: int | None = None
    maximum: int | None = None
    max_length: int | None = None
    nonempty: bool = False


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


_TYPE_CHECKS: dict[Kind, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "integer": _is_int,  # JSON has one number type; the vendor's ints refuse 1.0 and true
    "string[]": lambda v: isinstance(v, list) and all(isinstance(i, str) for i in v),
    "object": lambda v: isinstance(v, dict),
    "string-map": lambda v: isinstance(v, dict),  # values are checked key by key
}


def _check_type(name: str, spec: Field, value: Any) -> None:
    if not _TYPE_CHECKS[spec.kind](value):
        raise bad_parameter(f"{name}: expected {spec.kind}, got {_json_type(value)}")


def _check_limits(name: str, spec: Field, value: Any) -> None:
    if spec.nonempty and len(value) == 0:
        raise bad_parameter(f"{name}: must not be empty")
    if spec.max_items is not None and len(value) > spec.max_items:
        raise bad_parameter(f"{name}: at most {spec.max_items} items allowed, got {len(value)}")
    if spec.kind == "string[]" and any(not item for item in value):
        raise bad_parameter(f"{name}: items must not be empty strings")
    if spec.max_length is not None and len(value) > spec.max_length:
        raise bad_parameter(f"{name}: at most {spec.max_length} characters allowed")
    if spec.minimum is not None and value < spec.minimum:
        raise bad_parameter(f"{name}: must be at least {spec.minimum}")
    if spec.maximum is not None and value > spec.maximum:
        raise bad_parameter(f"{name}: must be at most {spec.maximum}")


def _json_type(value: Any) -> str:
    names = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array"}
    return "null" if value is None else names.get(type(value), "object")


def validate(fields: Mapping[str, Field], body: Any) -> dict[str, Any]:
    """The body's known fields, checked for presence, JSON type and limits."""
    if not isinstance(body, dict):
        raise bad_parameter(f"request body must be a JSON object, got {_json_type(body)}")
    checked = {}
    for name, spec in fields.items():
        if name not in body:
            if spec.required:
                raise bad_parameter(f"{name}: required")
            continue
        value = body[name]
        _check_type(name, spec, value)
        _check_limits(name, spec, value)
        checked[name] = value
    return checked


def parse_json(raw: bytes) -> Any:
    if not raw.strip():
        raise bad_parameter("request body is empty; expected a JSON object")
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise bad_parameter(f"request body is not valid JSON: {exc}") from None


# ------------------------------------------------------------------------- registry

Handler = Callable[[Store, dict[str, Any]], Result]


@dataclass(frozen=True)
class Endpoint:
    path: str
    fields: Mapping[str, Field]
    handler: Handler = field(compare=False)


ENDPOINTS: dict[str, Endpoint] = {}
"""Every v4 endpoint the emulator serves, by path (tests compare them to the OpenAPI)."""


def endpoint(path: str, **fields: Field) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        ENDPOINTS[path] = Endpoint(path, fields, handler)
        return handler

    return register


def _ids(limit: int) -> Field:
    return Field("string[]", required=True, max_items=limit, nonempty=True)


def _uid() -> Field:
    return Field("string", required=True, nonempty=True)


def _page(max_size: int) -> dict[str, Field]:
    return {
        "page": Field("integer", minimum=1),
        "pageSize": Field("integer", minimum=1, maximum=max_size),
    }


# -------------------------------------------------------------------------- helpers


def format_time(epoch: int | None) -> str:
    if epoch is None:
        return FOREVER
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def _active_row(store: Store, uid: str) -> dict[str, Any]:
    """The record of a user the vendor would serve (registered and not soft-deleted)."""
    row = storage.user_row(store, uid)
    if row is None or not row["active"]:
        raise user_not_found([uid])
    return row


def _known_rows(store: Store, uids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The records of all ``uids`` (active or not); refuses the call if one is unknown."""
    rows = {uid: storage.user_row(store, uid) for uid in dict.fromkeys(uids)}
    missing = [uid for uid, row in rows.items() if row is None]
    if missing:
        raise user_not_found(missing)
    return {uid: row for uid, row in rows.items() if row is not None}


def _operation_id() -> str:
    return uuid.uuid4().hex


def encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode().rstrip("=")


def decode_cursor(token: str, name: str = "pageToken") -> int:
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        if text.startswith("o:") and text[2:].isdigit():
            return int(text[2:])
    except (ValueError, UnicodeDecodeError):
        pass
    raise bad_parameter(f"{name}: not a cursor this server returned")


def _page_bounds(body: Mapping[str, Any], default_size: int) -> tuple[int, int]:
    size = body.get("pageSize", default_size)
    return (body.get("page", 1) - 1) * size, size


# -------------------------------------------------------------------- users, tokens


@endpoint(
    "/v4/auth/access-token/issue",
    userId=_uid(),
    name=Field("string", required=True, nonempty=True, max_length=64),
    avatarUrl=Field("string"),
)
def issue_access_token(store: Store, body: dict[str, Any]) -> Result:
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
            store.insert_users([User(uid, name=name, avatar=avatar)], owner=None)
        elif not row["active"]:
            raise user_not_found([uid])
        else:
            changes = {"name": name} if avatar is None else {"name": name, "avatar": avatar}
            store.update_user(uid, changes)
        token, _ = store.issue_token(uid)
    return {"userId": uid, "accessToken": token}


@endpoint(
    "/v4/auth/access-token/expire",
    userIds=_ids(20),
    expiresAt=Field("integer", required=True, minimum=0),
)
def expire_access_token(store: Store, body: dict[str, Any]) -> Result:
    rows = _known_rows(store, body["userIds"])
    when = datetime.fromtimestamp(body["expiresAt"] / 1000, tz=UTC)
    with store.transaction():
        for uid in rows:
            store.update_user(uid, {"tokens_valid_after": when})
    return None


@endpoint("/v4/user/get", userId=_uid())
def get_user(store: Store, body: dict[str, Any]) -> Result:
    row = _active_row(store, body["userId"])
    return {
        "name": row["name"],
        "avatarUrl": row["avatar"] or "",
        "createdAt": format_time(row["created_at"]),
    }


@endpoint(
    "/v4/user/update",
    userId=_uid(),
    name=Field("string", nonempty=True, max_length=64),
    avatarUrl=Field("string"),
)
def update_user(store: Store, body: dict[str, Any]) -> Result:
    uid = body["userId"]
    if len(body.get("avatarUrl", "").encode()) > 1024:
        raise bad_parameter("avatarUrl: at most 1024 bytes allowed")
    _active_row(store, uid)
    changes = {"name": body.get("name"), "avatar": body.get("avatarUrl")}
    store.update_user(uid, {key: value for key, value in changes.items() if value is not None})
    return None


@endpoint("/v4/user/connection-status/get", userId=_uid())
def get_connection_status(store: Store, body: dict[str, Any]) -> Result:
    _active_row(store, body["userId"])
    return {"status": "0"}  # nobody connects to the emulator: always offline


# --------------------------------------------------------------------------- bans


@endpoint(
    "/v4/user/ban",
    userIds=_ids(20),
    durationMinutes=Field("integer", required=True, minimum=1, maximum=MAX_BAN_MINUTES),
)
def ban_users(store: Store, body: dict[str, Any]) -> Result:
    rows = _known_rows(store, body["userIds"])
    until = store.now() + body["durationMinutes"] * 60
    store.ban(rows, datetime.fromtimestamp(until, tz=UTC))
    return None


@endpoint("/v4/user/unban", userIds=_ids(20))
def unban_users(store: Store, body: dict[str, Any]) -> Result:
    store.unban(_known_rows(store, body["userIds"]))
    return None


@endpoint("/v4/user/ban/list", **_page(1000))
def list_banned_users(store: Store, body: dict[str, Any]) -> Result:
    # Without a page the vendor returns the first 1000 bans; latest expiry first.
    offset, size = _page_bounds(body, 50 if "page" in body else 1000)
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


# ----------------------------------------------------------- soft-delete and restore


@endpoint("/v4/user/soft-delete", userIds=_ids(100))
def soft_delete_users(store: Store, body: dict[str, Any]) -> Result:
    rows = _known_rows(store, body["userIds"])
    # Users already deleted keep their deletion time (and so their restore delay).
    store.set_active([uid for uid, row in rows.items() if row["active"]], False)
    return {"operationId": _operation_id()}


@endpoint("/v4/user/restore", userIds=_ids(100))
def restore_users(store: Store, body: dict[str, Any]) -> Result:
    rows = _known_rows(store, body["userIds"])
    deleted = {uid: row for uid, row in rows.items() if not row["active"]}
    allowed_after = store.now() - RESTORE_DELAY
    recent = [uid for uid, row in deleted.items() if (row["deactivated_at"] or 0) > allowed_after]
    if recent:
        raise bad_parameter(
            "userIds: restore is not allowed within 1 hour of the soft-delete: " + ", ".join(recent)
        )
    store.set_active(deleted, True)
    return {"operationId": _operation_id()}


@endpoint("/v4/user/soft-deleted/list", **_page(50))
def list_soft_deleted_users(store: Store, body: dict[str, Any]) -> Result:
    offset, size = _page_bounds(body, 50)
    return {"userIds": storage.uids_page(store, offset=offset, limit=size, active=False)}


# --------------------------------------------------------------------------- tags


@endpoint(
    "/v4/user/tag/batch/set",
    userIds=_ids(1000),
    tags=Field("string[]", required=True, max_items=20),
)
def batch_set_user_tags(store: Store, body: dict[str, Any]) -> Result:
    for tag in body["tags"]:
        if not TAG.match(tag) or len(tag.encode()) > 40:
            raise bad_parameter(
                f"tags: {tag!r} is not allowed (letters, digits, '_' and '-', at most 40 bytes)"
            )
    rows = _known_rows(store, body["userIds"])
    with store.transaction():
        for uid in rows:
            store.update_user(uid, {"tags": body["tags"]})
    return None


@endpoint("/v4/user/tag/batch/get", userIds=_ids(50))
def batch_get_user_tags(store: Store, body: dict[str, Any]) -> Result:
    users = store.get_users(dict.fromkeys(body["userIds"]))
    return {
        "users": [
            {"userId": uid, "tags": list(users[uid].tags or ())}
            for uid in dict.fromkeys(body["userIds"])
            if uid in users
        ]
    }


# ---------------------------------------------------------------------- blocklist


@endpoint("/v4/user/blocklist/add", userId=_uid(), targetUserIds=_ids(20))
def add_user_blocklist(store: Store, body: dict[str, Any]) -> Result:
    uid, targets = body["userId"], set(body["targetUserIds"])
    _active_row(store, uid)
    current = store.relations("blocks", [uid]).get(uid, set())
    if len(current | targets) > MAX_BLOCKLIST:
        raise bad_parameter(f"targetUserIds: a blocklist holds at most {MAX_BLOCKLIST} users")
    store.add_relations("blocks", [(uid, target) for target in sorted(targets)])
    return None


@endpoint("/v4/user/blocklist/remove", userId=_uid(), blockedUserIds=_ids(20))
def remove_user_blocklist(store: Store, body: dict[str, Any]) -> Result:
    uid = body["userId"]
    _active_row(store, uid)
    store.remove_relations("blocks", [(uid, target) for target in body["blockedUserIds"]])
    return None


@endpoint(
    "/v4/user/blocklist/get",
    userId=_uid(),
    pageToken=Field("string"),
    pageSize=Field("integer", minimum=1, maximum=1000),
    order=Field("integer", minimum=0, maximum=1),
)
def get_user_blocklist(store: Store, body: dict[str, Any]) -> Result:
    uid = body["userId"]
    offset = decode_cursor(body["pageToken"]) if body.get("pageToken") else 0
    _active_row(store, uid)
    size = body.get("pageSize", 1000)
    # One extra row tells whether another page follows, without a count query.
    targets = storage.relation_page(
        store, "blocks", uid, offset=offset, limit=size + 1, newest_first=body.get("order", 0) == 0
    )
    result: dict[str, Any] = {"blockedUserIds": targets[:size]}
    if len(targets) > size:
        result["pageToken"] = encode_cursor(offset + size)
    return result


# ------------------------------------------------------------------ hosted profiles

#: userProfile keys: (store key, JSON type, limit: max length or (min, max)).
PROFILE_FIELDS: dict[str, tuple[str, Kind, int | tuple[int, int]]] = {
    "uniqueId": ("unique_id", "string", 32),
    "name": ("name", "string", 64),
    "portraitUri": ("portraitUri", "string", 1024),
    "email": ("email", "string", 128),
    "birthday": ("birthday", "string", 32),
    "gender": ("gender", "integer", (0, 2)),
    "location": ("location", "string", 32),
    "role": ("role", "integer", (0, 100)),
    "level": ("level", "integer", (0, 100)),
}
MAX_EXT_KEYS = 20


def profile_to_api(profile: Mapping[str, Any] | None) -> tuple[dict[str, Any], dict[str, str]]:
    """``userProfile`` and ``userExtProfile`` from a stored profile (unknown keys left out)."""
    profile = profile or {}
    basic = {
        api_key: profile[store_key]
        for api_key, (store_key, _, _) in PROFILE_FIELDS.items()
        if store_key in profile
    }
    ext = dict(profile.get("ext") or {})
    return basic, ext


def profile_from_api(
    current: Mapping[str, Any] | None,
    basic: Mapping[str, Any],
    ext: Mapping[str, Any],
) -> dict[str, Any]:
    """The stored profile after a ``profile/set``: given keys replace, others stay."""
    merged = dict(current or {})
    for api_key, value in basic.items():
        merged[PROFILE_FIELDS[api_key][0]] = value
    if ext:
        merged["ext"] = {**(merged.get("ext") or {}), **ext}
    return merged


def _profile_key_problem(key: str, value: Any) -> str | None:
    if key not in PROFILE_FIELDS:
        return f"userProfile: unknown key {key!r}"
    _, kind, limit = PROFILE_FIELDS[key]
    if kind == "integer":
        low, high = limit if isinstance(limit, tuple) else (0, limit)
        if not _is_int(value) or not low <= value <= high:
            return f"userProfile.{key}: expected an integer from {low} to {high}"
    elif not isinstance(value, str) or len(value) > int(limit):  # type: ignore[arg-type]
        return f"userProfile.{key}: expected a string of at most {limit} characters"
    return None


def _ext_key_problem(key: str, value: Any) -> str | None:
    if not EXT_KEY.match(key) or len(key) > 32:
        return f"userExtProfile: key {key!r} must be 'ext_' and letters or digits, at most 32"
    if not isinstance(value, str) or len(value) > 256:
        return f"userExtProfile.{key}: expected a string of at most 256 characters"
    return None


def _refuse_profile_key(key: str, problem: str) -> NexconnError:
    return NexconnError(200, BAD_PARAMETER, problem, {"profileKey": key})


@endpoint(
    "/v4/user/profile/set",
    userId=_uid(),
    userProfile=Field("object"),
    userExtProfile=Field("string-map"),
)
def set_user_profile(store: Store, body: dict[str, Any]) -> Result:
    basic, ext = body.get("userProfile", {}), body.get("userExtProfile", {})
    if "userProfile" not in body and "userExtProfile" not in body:
        raise bad_parameter("one of userProfile and userExtProfile is required")
    for key, value in basic.items():
        problem = _profile_key_problem(key, value)
        if problem:
            raise _refuse_profile_key(key, problem)
    for key, value in ext.items():
        problem = _ext_key_problem(key, value)
        if problem:
            raise _refuse_profile_key(key, problem)
    row = _active_row(store, body["userId"])
    current = json.loads(row["profile"]) if row["profile"] else {}
    merged = profile_from_api(current, basic, ext)
    if len(merged.get("ext") or {}) > MAX_EXT_KEYS:
        raise bad_parameter(f"userExtProfile: at most {MAX_EXT_KEYS} keys per user")
    store.update_user(body["userId"], {"profile": merged})
    return None


def _profile_item(uid: str, row: Mapping[str, Any]) -> dict[str, Any]:
    basic, ext = profile_to_api(json.loads(row["profile"]) if row["profile"] else None)
    return {
        "userId": uid,
        "version": row["profile_version"],
        "userProfile": basic,
        "userExtProfile": ext,
    }


@endpoint("/v4/user/profile/batch/get", userIds=_ids(20))
def batch_get_user_profiles(store: Store, body: dict[str, Any]) -> Result:
    rows = {uid: storage.user_row(store, uid) for uid in dict.fromkeys(body["userIds"])}
    return {"users": [_profile_item(uid, row) for uid, row in rows.items() if row is not None]}


@endpoint(
    "/v4/user/profile/list",
    **_page(100),
    order=Field("integer", minimum=0, maximum=1),
)
def list_user_profiles(store: Store, body: dict[str, Any]) -> Result:
    offset, size = _page_bounds(body, 20)
    uids = storage.uids_page(
        store, offset=offset, limit=size, with_profile=True, newest_first=body.get("order", 0) == 1
    )
    rows = {uid: storage.user_row(store, uid) for uid in uids}
    return {"users": [_profile_item(uid, row) for uid, row in rows.items() if row is not None]}


@endpoint("/v4/user/profile/delete", userIds=_ids(20))
def delete_user_profiles(store: Store, body: dict[str, Any]) -> Result:
    rows = _known_rows(store, body["userIds"])
    with store.transaction():
        for uid in rows:
            store.update_user(uid, {"profile": None})
    return None


# ---------------------------------------------------------------------------- HTTP


def success(result: Result) -> Response:
    return JSONResponse({"code": OK} if result is None else {"code": OK, "result": result})


def _route(store: Store, verifier: SignatureVerifier, spec: Endpoint) -> Route:
    async def handle(request: Request) -> Response:
        refused = verifier.verify(request.headers, "ms")
        if refused is not None:
            message = f"Signature verification failed: {refused.reason}"
            return error_response(401, BAD_SIGNATURE, message)
        try:
            body = validate(spec.fields, parse_json(await request.body()))
            return success(spec.handler(store, body))
        except NexconnError as error:
            return error.response()

    return Route(spec.path, handle, methods=["POST"], name=f"nexconn:{spec.path}")


def routes(store: Store, verifier: SignatureVerifier) -> list[BaseRoute]:
    """The v4 routes, all signed JSON POSTs."""
    return [_route(store, verifier, spec) for spec in ENDPOINTS.values()]
