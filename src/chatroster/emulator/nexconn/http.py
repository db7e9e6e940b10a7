"""Plumbing shared by the Nexconn endpoint groups: reading and checking requests, the
success envelopes, paging and cursors, and the lookups every group makes.

A v4 handler gets the store and the checked JSON body and returns the ``result``
object of a success (or None for a code-only answer); a legacy handler gets the form
and returns the payload. Both raise `NexconnError` (`errors.py`) for anything the
vendor refuses; `routes.py` turns them into HTTP endpoints.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar
from urllib.parse import parse_qs

from starlette.responses import JSONResponse, Response

from ...store import Store
from .. import storage
from .errors import OK, bad_parameter, user_not_found
from .rules import Rules

T = TypeVar("T")

Result = dict[str, Any] | None
Handler = Callable[[Store, dict[str, Any]], Result]
RuledHandler = Callable[[Store, dict[str, Any], Rules], Result]
"""A handler that also needs what the app declares in the console (`rules.Rules`)."""

FOREVER = "9999-12-31 23:59:59"
"""How a ban without end (possible in a store the local provider also writes) is shown."""


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


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


_TYPE_CHECKS: dict[Kind, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "integer": is_int,  # JSON has one number type; the vendor's ints refuse 1.0 and true
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


def uids_field(limit: int) -> Field:
    return Field("string[]", required=True, max_items=limit, nonempty=True)


def uid_field() -> Field:
    return Field("string", required=True, nonempty=True)


def page_fields(max_size: int) -> dict[str, Field]:
    return {
        "page": Field("integer", minimum=1),
        "pageSize": Field("integer", minimum=1, maximum=max_size),
    }


def success(result: Result) -> Response:
    return JSONResponse({"code": OK} if result is None else {"code": OK, "result": result})


# ---------------------------------------------------------------- legacy form bodies

LEGACY_OK = 200
MAX_PER_CALL = 20

Form = dict[str, list[str]]
FormHandler = Callable[[Store, Form], dict[str, Any]]


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


def legacy_success(payload: Mapping[str, Any]) -> Response:
    """The legacy envelope: ``{"code": 200, ...}`` with the payload at the top level."""
    return JSONResponse({"code": LEGACY_OK, **payload})


# ------------------------------------------------------------------ paging and times


def format_time(epoch: int | None) -> str:
    if epoch is None:
        return FOREVER
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


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


def cursor_bounds(body: Mapping[str, Any], default_size: int) -> tuple[int, int]:
    """Where a cursor listing's page starts and how many rows it holds; a pageToken this
    server did not return is a bad parameter (before any other check, as the vendor)."""
    offset = decode_cursor(body["pageToken"]) if body.get("pageToken") else 0
    return offset, body.get("pageSize", default_size)


def cursor_page(rows: Sequence[T], offset: int, size: int) -> tuple[list[T], str | None]:
    """The page out of ``rows``, read with one row more than it holds (which tells whether
    another page follows without a count query), and the next pageToken, if any."""
    return list(rows[:size]), encode_cursor(offset + size) if len(rows) > size else None


def page_bounds(body: Mapping[str, Any], default_size: int) -> tuple[int, int]:
    size = body.get("pageSize", default_size)
    return (body.get("page", 1) - 1) * size, size


# ------------------------------------------------------------------------- lookups


def active_row(store: Store, uid: str) -> dict[str, Any]:
    """The record of a user the vendor would serve (registered and not soft-deleted)."""
    row = storage.user_row(store, uid)
    if row is None or not row["active"]:
        raise user_not_found([uid])
    return row


def known_rows(store: Store, uids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The records of all ``uids`` (active or not); refuses the call if one is unknown."""
    rows = {uid: storage.user_row(store, uid) for uid in dict.fromkeys(uids)}
    missing = [uid for uid, row in rows.items() if row is None]
    if missing:
        raise user_not_found(missing)
    return {uid: row for uid, row in rows.items() if row is not None}
