"""Nexconn v4 hosted profiles: ``/v4/user/profile/set``, ``batch/get``, ``list`` and
``delete`` on the users' ``profile`` field.

A ``profile/set`` rejection of one profile key is answered with HTTP 200 and a body
``{"code": 1002, "errorMessage": ..., "profileKey": <key>}``: the OpenAPI file puts
``profileKey`` ("the failed profile key when the update fails") in the 200 response.
So is an ext key that was not declared in the console first (`rules.Rules.ext_keys`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from ...store import Store
from .. import storage
from .errors import BAD_PARAMETER, NexconnError, bad_parameter
from .http import (
    Field,
    Kind,
    Result,
    active_row,
    is_int,
    known_rows,
    page_bounds,
    page_fields,
    uid_field,
    uids_field,
)
from .routes import endpoint, ruled_endpoint
from .rules import Rules

EXT_KEY = re.compile(r"^ext_[A-Za-z0-9]+$")

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
        if not is_int(value) or not low <= value <= high:
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


@ruled_endpoint(
    "/v4/user/profile/set",
    userId=uid_field(),
    userProfile=Field("object"),
    userExtProfile=Field("string-map"),
)
def set_user_profile(store: Store, body: dict[str, Any], rules: Rules) -> Result:
    basic, ext = body.get("userProfile", {}), body.get("userExtProfile", {})
    if "userProfile" not in body and "userExtProfile" not in body:
        raise bad_parameter("one of userProfile and userExtProfile is required")
    for key, value in basic.items():
        problem = _profile_key_problem(key, value)
        if problem:
            raise _refuse_profile_key(key, problem)
    for key, value in ext.items():
        problem = _ext_key_problem(key, value)
        if problem is None and not rules.declares(key):
            problem = (
                f"userExtProfile: key {key!r} is not declared; declare it in the console "
                "(Chat > User profile hosting > Extended fields) first"
            )
        if problem:
            raise _refuse_profile_key(key, problem)
    row = active_row(store, body["userId"])
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


@endpoint("/v4/user/profile/batch/get", userIds=uids_field(20))
def batch_get_user_profiles(store: Store, body: dict[str, Any]) -> Result:
    rows = {uid: storage.user_row(store, uid) for uid in dict.fromkeys(body["userIds"])}
    return {"users": [_profile_item(uid, row) for uid, row in rows.items() if row is not None]}


@endpoint(
    "/v4/user/profile/list",
    **page_fields(100),
    order=Field("integer", minimum=0, maximum=1),
)
def list_user_profiles(store: Store, body: dict[str, Any]) -> Result:
    offset, size = page_bounds(body, 20)
    uids = storage.uids_page(
        store, offset=offset, limit=size, with_profile=True, newest_first=body.get("order", 0) == 1
    )
    rows = {uid: storage.user_row(store, uid) for uid in uids}
    return {"users": [_profile_item(uid, row) for uid, row in rows.items() if row is not None]}


@endpoint("/v4/user/profile/delete", userIds=uids_field(20))
def delete_user_profiles(store: Store, body: dict[str, Any]) -> Result:
    rows = known_rows(store, body["userIds"])
    with store.transaction():
        for uid in rows:
            store.update_user(uid, {"profile": None})
    return None
