"""Nexconn's wire format: endpoints, signing, answers, and the translation of users,
hosted profiles, bans and times between the neutral model and the vendor's JSON.

No I/O here: the client and the provider send what these functions build and read back
what they parse, so every rule of the vendor's format can be tested without a server.
Sources: ``reference/nexconn-api.md``, with the vendor's OpenAPI file as the tie-breaker.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypeVar

import httpx

from ...changes import Change
from ...errors import AuthError, Refusal
from ...http import request_target
from ...model import utc

LABEL = "nexconn"

#: Region hosts (primary, backup); paths are appended (``/v4/...``).
REGIONS: dict[str, tuple[str, str]] = {
    "sg": ("https://api.sg-light-api.com", "https://api-b.sg-light-api.com"),
    "us": ("https://api.us-light-api.com", "https://api-b.us-light-api.com"),
    "sau": ("https://api.sau-light-api.com", "https://api-b.sau-light-api.com"),
}

#: The ownership marker and the token watermark live in the user's hosted profile,
#: because that is the only per-user data Nexconn lets us read in bulk (profile/list).
OWNER_KEY = "ext_chatrosterOwner"
TOKENS_KEY = "ext_chatrosterTokens"
DIGEST_KEY = "ext_chatrosterDigest"
"""The digest of the declaration last applied to the user (`chatroster.refresh`)."""
NO_DIGEST = "-"
"""``DIGEST_KEY`` of a user whose digest was removed: ``profile/set`` only adds and
replaces keys, and clearing the profile to drop one would put the marker at risk."""
MARKER_KEYS = frozenset({OWNER_KEY, TOKENS_KEY, DIGEST_KEY})

MAX_BAN_MINUTES = 43200
"""One ban call lasts at most 30 days; the planner caps longer bans and renews them."""

# Status codes (the vendor's body ``code``).
V4_OK = 0
LEGACY_OK = 200
BAD_SIGNATURE = 1004
USER_NOT_FOUND = 24366


@dataclass(frozen=True)
class Endpoint:
    """One vendor endpoint: how many ids one call takes, and its own rate limit."""

    path: str
    per_call: int = 1
    rate_factor: float = 1.0
    """The vendor's limit for this endpoint as a multiple of the app's rate (calls/s)."""
    legacy: bool = False
    """Legacy API: form body, Timestamp in seconds, ``{"code": 200}`` on success."""
    reads: bool = False
    """A read (get, list, query): its request id is not one of a change's in the apply
    record, which lists the write calls that made the change."""


ISSUE = Endpoint("/v4/auth/access-token/issue", rate_factor=2.0)  # 200/s
EXPIRE = Endpoint("/v4/auth/access-token/expire", per_call=20)
USER_GET = Endpoint("/v4/user/get", reads=True)
CONNECTION_STATUS = Endpoint("/v4/user/connection-status/get", reads=True)
USER_UPDATE = Endpoint("/v4/user/update")
BAN = Endpoint("/v4/user/ban", per_call=20)
UNBAN = Endpoint("/v4/user/unban", per_call=20)
BAN_LIST = Endpoint("/v4/user/ban/list", per_call=1000, reads=True)
# "100 user IDs/s": with 100 ids per call that is one call per second at the default rate.
SOFT_DELETE = Endpoint("/v4/user/soft-delete", per_call=100, rate_factor=0.01)
RESTORE = Endpoint("/v4/user/restore", per_call=100, rate_factor=0.01)
SOFT_DELETED_LIST = Endpoint("/v4/user/soft-deleted/list", per_call=50, reads=True)
TAG_SET = Endpoint("/v4/user/tag/batch/set", per_call=1000, rate_factor=0.1)  # 10/s
TAG_GET = Endpoint("/v4/user/tag/batch/get", per_call=50, reads=True)
BLOCK_ADD = Endpoint("/v4/user/blocklist/add", per_call=20)
BLOCK_REMOVE = Endpoint("/v4/user/blocklist/remove", per_call=20)
BLOCK_GET = Endpoint("/v4/user/blocklist/get", per_call=1000, reads=True)
PROFILE_SET = Endpoint("/v4/user/profile/set")
PROFILE_GET = Endpoint("/v4/user/profile/batch/get", per_call=20, reads=True)
PROFILE_LIST = Endpoint("/v4/user/profile/list", per_call=100, reads=True)
PROFILE_DELETE = Endpoint("/v4/user/profile/delete", per_call=20)
WHITE_MODE_SET = Endpoint("/user/whitesetting/set.json", per_call=20, legacy=True)
WHITE_MODE_GET = Endpoint("/user/whitesetting/query.json", legacy=True, reads=True)
WHITELIST_ADD = Endpoint("/user/whitelist/add.json", per_call=20, legacy=True)
WHITELIST_REMOVE = Endpoint("/user/whitelist/remove.json", per_call=20, legacy=True)
WHITELIST_GET = Endpoint("/user/whitelist/query.json", per_call=1000, legacy=True, reads=True)
FRIEND_ADD = Endpoint("/v4/friend/add")
# Each target counts toward the limit, as on soft-delete: 100 targets a second.
FRIEND_REMOVE = Endpoint("/v4/friend/remove", per_call=100, rate_factor=0.01)
FRIEND_PROFILE_SET = Endpoint("/v4/friend/profile/set")
FRIEND_LIST = Endpoint("/v4/friend/list", per_call=100, reads=True)
FRIEND_PERMISSION_SET = Endpoint("/v4/friend/permission/set", per_call=100)
FRIEND_PERMISSION_GET = Endpoint("/v4/friend/permission/get", per_call=100, reads=True)

ENDPOINTS: tuple[Endpoint, ...] = (
    ISSUE,
    EXPIRE,
    USER_GET,
    CONNECTION_STATUS,
    USER_UPDATE,
    BAN,
    UNBAN,
    BAN_LIST,
    SOFT_DELETE,
    RESTORE,
    SOFT_DELETED_LIST,
    TAG_SET,
    TAG_GET,
    BLOCK_ADD,
    BLOCK_REMOVE,
    BLOCK_GET,
    PROFILE_SET,
    PROFILE_GET,
    PROFILE_LIST,
    PROFILE_DELETE,
    WHITE_MODE_SET,
    WHITE_MODE_GET,
    WHITELIST_ADD,
    WHITELIST_REMOVE,
    WHITELIST_GET,
    FRIEND_ADD,
    FRIEND_REMOVE,
    FRIEND_PROFILE_SET,
    FRIEND_LIST,
    FRIEND_PERMISSION_SET,
    FRIEND_PERMISSION_GET,
)

# ------------------------------------------------------------------------ signing


def signed_headers(app_key: str, app_secret: str, unit: Literal["ms", "s"] = "ms") -> dict[str, str]:
    """Fresh signing headers for one attempt: a new nonce and the current time.

    Signature = lowercase hex SHA1 of ``app_secret + nonce + timestamp``; v4 sends the
    timestamp in milliseconds, the legacy endpoints in seconds. The body is not signed.
    """
    nonce = str(secrets.randbelow(10**18 - 1) + 1)  # at most 18 digits, as the SDK
    now = time.time()
    timestamp = str(int(now * 1000) if unit == "ms" else int(now))
    signature = hashlib.sha1((app_secret + nonce + timestamp).encode("utf-8")).hexdigest()
    return {"App-Key": app_key, "Nonce": nonce, "Timestamp": timestamp, "Signature": signature}


def key_hash(app_key: str) -> str:
    """Which app a plan was made for, without the key: 8 hex digits of its SHA-256."""
    return hashlib.sha256(app_key.encode("utf-8")).hexdigest()[:8]


# ------------------------------------------------------------------------ answers


def user_not_found(refusal: Refusal) -> bool:
    """Whether Nexconn refused because a user named in the call does not exist."""
    return refusal.code == USER_NOT_FOUND


def _json_object(response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


REQUEST_ID_HEADER = "X-Request-ID"
"""The call's id, sent with every call (optional, at most 36 characters; the vendor's SDK
sends a UUID4). The vendor documents no echo of it: no answer in its OpenAPI
specification carries a request id (its ``requestId`` fields are request fields that
name a user), so the id chatroster sent is the one recorded, unless an answer's body
does carry a top-level ``requestId`` (`echoed_request_id`)."""


def echoed_request_id(response: httpx.Response) -> str | None:
    """The request id an answer's body gives (``requestId`` at its top level), if any:
    what the vendor says the call was is what its support will find."""
    body = _json_object(response)
    found = None if body is None else body.get("requestId")
    return found if isinstance(found, str) and 0 < len(found) <= 128 and found.isprintable() else None


def error_message(body: Mapping[str, Any]) -> str:
    """The vendor's text for an error code: ``errorMessage`` (v4), ``msg`` or
    ``message`` (older and legacy answers), with the profile key a refusal names."""
    message = str(body.get("errorMessage") or body.get("msg") or body.get("message") or "")
    if "profileKey" in body:
        key = str(body["profileKey"])
        message += f" (profile key {key!r})"
        if key.startswith("ext_"):
            message += f"; {UNDECLARED_HINT.format(key=key)}"
    return message


UNDECLARED_HINT = (
    "Nexconn refuses ext keys not declared in its console: declare {key} under Chat > "
    "User profile hosting > Extended fields (at most 20 keys, chatroster's "
    "ext_chatrosterOwner, ext_chatrosterTokens and ext_chatrosterDigest included), then "
    "run apply again"
)
"""What to do when the vendor refuses a ``userExtProfile`` key (it names the key)."""


def describe_error(response: httpx.Response) -> str:
    """A failed answer in the vendor's words, for the HTTP client's retry messages:
    ``HTTP 429, code 1008: Too many requests``."""
    body = _json_object(response)
    if body is None:
        return f"HTTP {response.status_code}"
    return f"HTTP {response.status_code}, code {body.get('code')}: {error_message(body)}"


def result_of(response: httpx.Response, endpoint: Endpoint) -> dict[str, Any]:
    """The payload of a successful answer; raises `AuthError` or `Refusal` otherwise.

    v4 answers ``{"code": 0, "result": {...}}``; the legacy API ``{"code": 200, ...}``
    with the payload at the top level. HTTP 200 with another code is a failure too.
    """
    where = request_target(response, f"POST {endpoint.path}")
    body = _json_object(response)
    if body is None:
        text = response.text[:200]
        raise Refusal(endpoint, response.status_code, None, f"not a JSON object: {text!r}", where)
    code = body.get("code")
    ok = LEGACY_OK if endpoint.legacy else V4_OK
    if response.status_code == 200 and code == ok:
        payload = body if endpoint.legacy else body.get("result")
        return dict(payload) if isinstance(payload, dict) else {}
    message = error_message(body)
    if response.status_code in (401, 403) or code == BAD_SIGNATURE:
        raise AuthError(
            f"[{LABEL}] {where}: the credentials were refused (HTTP {response.status_code}, "
            f"code {code}: {message}); check provider.app_key and provider.app_secret in the "
            "manifest and the environment variables they name"
        )
    status, known = response.status_code, code if isinstance(code, int) else None
    raise Refusal(endpoint, status, known, message, where)


# -------------------------------------------------------------------------- times


def to_ms(value: datetime) -> int:
    return int(utc(value).timestamp() * 1000)


def from_ms(value: Any) -> datetime | None:
    """A ms epoch as the watermark stores it (a decimal string); junk reads as unknown."""
    text = str(value or "").strip()
    if not text.isdigit():
        return None
    return datetime.fromtimestamp(int(text) / 1000, tz=UTC)


def parse_time(value: Any) -> datetime | None:
    """A vendor time: ``YYYY-MM-DD HH:MM:SS`` (UTC), ISO 8601, or an epoch in s or ms.

    ``None`` for a time at or after year 9999, which is how a ban without end shows.
    """
    text = str(value).strip()
    if text.isdigit():
        number = int(text)
        when = datetime.fromtimestamp(number / 1000 if number > 10**11 else number, UTC)
    else:
        when = datetime.fromisoformat(text)
    if when.year >= 9999:
        return None
    return utc(when)


def ban_minutes(until: datetime | None, now: datetime) -> int:
    """``durationMinutes`` for a ban until ``until`` (``None``: as long as allowed)."""
    if until is None:
        return MAX_BAN_MINUTES
    minutes = round((until - now) / timedelta(minutes=1))
    return max(1, min(MAX_BAN_MINUTES, minutes))


def time_of(value: Any) -> datetime | None:
    """A time from a change (ISO 8601); ``None`` and ``"forever"`` mean no end."""
    if value is None or value == "forever":
        return None
    return utc(datetime.fromisoformat(str(value)))


# ---------------------------------------------------------------------- users

Push = tuple[str | None, str | None]
"""A user's push name and avatar (what ``user/get`` serves)."""


def push_from_api(result: Mapping[str, Any]) -> Push:
    """``(name, avatar)`` from ``user/get``: the push name and avatar; ``""`` is none."""
    return result.get("name") or None, result.get("avatarUrl") or None


def push_to_api(after: Mapping[str, Any]) -> dict[str, str]:
    """``name``/``avatarUrl`` for ``access-token/issue`` and ``user/update``.

    An avatar set to none is sent as ``""``, which clears it (omitting it would keep it).
    """
    body: dict[str, str] = {}
    if after.get("name") is not None:
        body["name"] = str(after["name"])
    if "avatar" in after:
        body["avatarUrl"] = after["avatar"] or ""
    return body


# ------------------------------------------------------------------ hosted profiles

#: Model profile keys and their ``userProfile`` names; ``ext`` is ``userExtProfile``.
PROFILE_NAMES = {
    "email": "email",
    "birthday": "birthday",
    "gender": "gender",
    "location": "location",
    "level": "level",
    "role": "role",
    "unique_id": "uniqueId",
}
_INT_KEYS = frozenset({"gender", "level", "role"})
#: ``userProfile`` keys that hold the user's name and avatar; chatroster keeps them equal
#: to the push name and avatar, so a soft-deleted user (whose push data the vendor
#: drops and ``user/get`` no longer serves) still reads with its name.
NAME_KEY, AVATAR_KEY = "name", "portraitUri"


@dataclass(frozen=True)
class HostedProfile:
    """A user's hosted profile as the vendor holds it: ``userProfile`` and
    ``userExtProfile``, the two chatroster markers included."""

    basic: Mapping[str, Any] = field(default_factory=dict)
    ext: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_api(cls, item: Mapping[str, Any]) -> HostedProfile:
        return cls(dict(item.get("userProfile") or {}), dict(item.get("userExtProfile") or {}))

    def to_api(self, uid: str) -> dict[str, Any]:
        """The ``profile/set`` body that writes this whole profile."""
        return {"userId": uid, "userProfile": dict(self.basic), "userExtProfile": dict(self.ext)}

    # -- what the model sees

    @property
    def profile(self) -> dict[str, Any]:
        """The model's ``profile``: known keys, and ``ext`` without chatroster's markers."""
        names = {api: model for model, api in PROFILE_NAMES.items()}
        profile = {names[key]: value for key, value in self.basic.items() if key in names}
        ext = {key: value for key, value in self.ext.items() if key not in MARKER_KEYS}
        if ext:
            profile["ext"] = ext
        return profile

    @property
    def owner(self) -> str | None:
        return self.ext.get(OWNER_KEY) or None

    @property
    def tokens_valid_after(self) -> datetime | None:
        return from_ms(self.ext.get(TOKENS_KEY))

    @property
    def digest(self) -> str | None:
        found = self.ext.get(DIGEST_KEY)
        return None if not found or found == NO_DIGEST else found

    @property
    def push(self) -> Push:
        """The name and avatar kept in the profile (see `NAME_KEY`)."""
        return self.basic.get(NAME_KEY) or None, self.basic.get(AVATAR_KEY) or None

    # -- changes, each returning a new profile

    def with_profile(self, profile: Mapping[str, Any]) -> HostedProfile:
        """Replace the keys the model manages; keep name, avatar and the markers."""
        basic = {k: v for k, v in self.basic.items() if k not in PROFILE_NAMES.values()}
        basic.update(profile_to_api(profile))
        ext = {k: v for k, v in self.ext.items() if k in MARKER_KEYS}
        ext.update(ext_to_api(profile.get("ext") or {}))
        return HostedProfile(basic, ext)

    def with_push(self, after: Mapping[str, Any]) -> HostedProfile:
        """Keep ``name``/``avatar`` from a change in step with the push data."""
        basic = dict(self.basic)
        if after.get("name") is not None:
            basic[NAME_KEY] = str(after["name"])
        if "avatar" in after:
            if after["avatar"]:
                basic[AVATAR_KEY] = str(after["avatar"])
            else:
                basic.pop(AVATAR_KEY, None)
        return replace(self, basic=basic)

    def with_owner(self, owner: str) -> HostedProfile:
        return replace(self, ext={**self.ext, OWNER_KEY: owner})

    def with_digest(self, digest: str) -> HostedProfile:
        """The digest recorded (``""``: removed, as `NO_DIGEST` where one was kept)."""
        if not digest and DIGEST_KEY not in self.ext:
            return self
        return replace(self, ext={**self.ext, DIGEST_KEY: digest or NO_DIGEST})

    def with_tokens(self, valid_after: datetime) -> HostedProfile:
        return replace(self, ext={**self.ext, TOKENS_KEY: str(to_ms(valid_after))})

    def drops_keys_of(self, current: HostedProfile) -> bool:
        """Whether writing this over ``current`` removes keys: ``profile/set`` only
        adds and replaces, so removing needs ``profile/delete`` first."""
        return bool(set(current.basic) - set(self.basic) or set(current.ext) - set(self.ext))


def profile_to_api(profile: Mapping[str, Any]) -> dict[str, Any]:
    """``userProfile`` from the model's profile (``ext`` goes to `ext_to_api`)."""
    basic: dict[str, Any] = {}
    for key, value in profile.items():
        if key == "ext":
            continue
        if key not in PROFILE_NAMES:
            raise ValueError(f"profile.{key} is not a Nexconn hosted-profile key")
        if key in _INT_KEYS and (not isinstance(value, int) or isinstance(value, bool)):
            raise ValueError(f"profile.{key} must be an integer on Nexconn, not {value!r}")
        if key not in _INT_KEYS and not isinstance(value, str):
            raise ValueError(f"profile.{key} must be a string on Nexconn, not {value!r}")
        basic[PROFILE_NAMES[key]] = value
    return basic


def ext_to_api(ext: Mapping[str, Any]) -> dict[str, str]:
    """``userExtProfile`` from the model's ``profile.ext`` (the markers are chatroster's)."""
    for key, value in ext.items():
        if key in MARKER_KEYS:
            raise ValueError(f"profile.ext.{key} is chatroster's own marker; leave it out")
        if not isinstance(value, str):
            raise ValueError(  # noqa: TRY004 - a bad manifest value fails its change alone
                f"profile.ext.{key} must be a string on Nexconn, not {value!r}"
            )
    return dict(ext)


# ------------------------------------------------------------------------- batching

T = TypeVar("T")
K = TypeVar("K")


def chunked(items: Sequence[T], size: int) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def grouped_chunks(pairs: Iterable[tuple[K, T]], size: int) -> list[tuple[K, list[T]]]:
    """Items grouped by key (first-seen order), each group cut into calls of ``size``."""
    groups: dict[K, list[T]] = {}
    for key, item in pairs:
        groups.setdefault(key, []).append(item)
    return [(key, chunk) for key, items in groups.items() for chunk in chunked(items, size)]


def required_time(change: Change, name: str) -> datetime:
    """The time a change's ``after`` holds under ``name``; a bad value fails the change."""
    value = time_of(change.after.get(name))
    if value is None:
        raise ValueError(f"{change.key}: {name} needs a time")
    return value
