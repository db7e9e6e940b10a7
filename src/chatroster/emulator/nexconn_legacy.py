"""Nexconn's legacy user-whitelist endpoints, translated onto the store.

v4 has no user allowlist, so the vendor keeps serving these older endpoints on the
same hosts, with the older conventions: a form-encoded body where a list is the same
key repeated, the same signing headers but ``Timestamp`` in seconds, and success as
``{"code": 200, ...}`` with the payload at the top level. Errors keep the v4 body.
The whitelist is the store's ``whitelist`` relation; the per-user switch is
``users.whitelist_mode``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ..store import Store
from . import storage
from .nexconn import (
    BAD_SIGNATURE,
    NexconnError,
    bad_parameter,
    decode_cursor,
    encode_cursor,
    error_response,
    user_not_found,
)
from .signing import SignatureVerifier

LEGACY_OK = 200
MAX_PER_CALL = 20
MAX_WHITELIST = 3000
MAX_QUERY_SIZE = 1000

Form = dict[str, list[str]]
Handler = Callable[[Store, Form], dict[str, Any]]


# --------------------------------------------------------------------- form fields


def parse_form(raw: bytes) -> Form:
    try:
        return parse_qs(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise bad_parameter("request body is not UTF-8 form data") from None


def one(form: Form, name: str, *, required: bool = True) -> str | None:
    values = form.get(name, [])
    if len(values) > 1:
        raise bad_parameter(f"{name}: given {len(values)} times, expected once")
    if not values or values[0] == "":
        if required:
            raise bad_parameter(f"{name}: required")
        return None
    return values[0]


def many(form: Form, name: str, limit: int = MAX_PER_CALL) -> list[str]:
    values = form.get(name, [])
    if not values:
        raise bad_parameter(f"{name}: required")
    if any(value == "" for value in values):
        raise bad_parameter(f"{name}: values must not be empty")
    if len(values) > limit:
        raise bad_parameter(f"{name}: at most {limit} values allowed, got {len(values)}")
    return list(dict.fromkeys(values))


def integer(value: str | None, name: str, low: int, high: int) -> int | None:
    if value is None:
        return None
    if not value.isascii() or not value.isdigit() or not low <= int(value) <= high:
        raise bad_parameter(f"{name}: expected an integer from {low} to {high}")
    return int(value)


def _active(store: Store, uid: str) -> dict[str, Any]:
    row = storage.user_row(store, uid)
    if row is None or not row["active"]:
        raise user_not_found([uid])
    return row


# ------------------------------------------------------------------------ handlers


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
    row = _active(store, uid)
    return {"userId": uid, "whiteSetting": int(row["whitelist_mode"])}


def add_whitelist(store: Store, form: Form) -> dict[str, Any]:
    uid = one(form, "userId") or ""
    targets = set(many(form, "whiteUserId"))
    _active(store, uid)
    current = store.relations("whitelist", [uid]).get(uid, set())
    if len(current | targets) > MAX_WHITELIST:
        raise bad_parameter(f"whiteUserId: a whitelist holds at most {MAX_WHITELIST} users")
    store.add_relations("whitelist", [(uid, target) for target in sorted(targets)])
    return {}


def remove_whitelist(store: Store, form: Form) -> dict[str, Any]:
    uid = one(form, "userId") or ""
    targets = many(form, "whiteUserId")
    _active(store, uid)
    store.remove_relations("whitelist", [(uid, target) for target in targets])
    return {}


def query_whitelist(store: Store, form: Form) -> dict[str, Any]:
    uid = one(form, "userId") or ""
    token = one(form, "pageToken", required=False)
    size = integer(one(form, "size", required=False), "size", 1, MAX_QUERY_SIZE)
    size = size or MAX_QUERY_SIZE
    _active(store, uid)
    offset = decode_cursor(token) if token else 0
    # One extra row tells whether another page follows.
    users = storage.relation_page(store, "whitelist", uid, offset=offset, limit=size + 1)
    result: dict[str, Any] = {"users": users[:size]}
    if len(users) > size:
        result["next"] = encode_cursor(offset + size)
    return result


HANDLERS: dict[str, Handler] = {
    "/user/whitesetting/set.json": set_white_setting,
    "/user/whitesetting/query.json": query_white_setting,
    "/user/whitelist/add.json": add_whitelist,
    "/user/whitelist/remove.json": remove_whitelist,
    "/user/whitelist/query.json": query_whitelist,
}


# ---------------------------------------------------------------------------- HTTP


def _route(store: Store, verifier: SignatureVerifier, path: str, handler: Handler) -> Route:
    async def handle(request: Request) -> Response:
        refused = verifier.verify(request.headers, "s")
        if refused is not None:
            message = f"Signature verification failed: {refused.reason}"
            return error_response(401, BAD_SIGNATURE, message)
        try:
            payload = handler(store, parse_form(await request.body()))
        except NexconnError as error:
            return error.response()
        return JSONResponse({"code": LEGACY_OK, **payload})

    return Route(path, handle, methods=["POST"], name=f"nexconn-legacy:{path}")


def routes(store: Store, verifier: SignatureVerifier) -> list[BaseRoute]:
    """The legacy whitelist routes, signed form POSTs answered in the legacy envelope."""
    return [_route(store, verifier, path, handler) for path, handler in HANDLERS.items()]
