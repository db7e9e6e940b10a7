"""The CometChat REST API v3 provider: a thin translator over `chatroster.transport`.

Reading (the fewest calls the documented API allows; CometChat has no batch GET by uid):
  GET /users?perPage=1000&withTags=true              active users, page by page
  GET /users?perPage=1000&withTags=true&onlyDeactivated=true   deactivated users
  GET /users/{uid}/blockedusers?direction=blockedByMe&perPage=1000   per managed blocklist
Two listings rather than one ``withDeactivated`` listing because nothing documented on a
row says whether that user is deactivated (``deactivatedAt`` is an SDK field, unverified
on REST); split this way they cost at most one call more than a single listing.

Writing: create/update/adopt/delete/flush one call per user, run concurrently;
deactivate and reactivate 25 uids a call; block and unblock one call per blocker.

The ownership marker lives in the user's metadata under ``@chatroster``:
``{"owner": "<owner>", "tokens_valid_after": <unix seconds>}``. It is stripped from
`User.metadata` on read and merged back into every metadata write, so the manifest's
metadata never sees it; the tokens watermark is kept there because CometChat cannot say
when a user's tokens were last flushed.
"""

from __future__ import annotations

import os
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from ..changes import Action, Change
from ..errors import AuthError, CometChatError, ProviderError
from ..model import ProviderConfig, State, User, thaw, utc
from ..transport import HttpClient, RateLimiter, request_target, run_concurrently
from . import CAPABILITIES
from .base import Provider, Scope, Tally
from .batches import raise_if, reason

MARKER_KEY = "@chatroster"
PER_PAGE = 1000
"""The largest page the vendor serves (users and blocked users)."""
BULK_MAX = 25
"""uids per deactivate or reactivate call."""
BLOCK_CHUNK = 100
"""Targets per block or unblock call (the vendor documents no limit; this stays modest)."""
REGIONS = ("us", "eu", "in")
DEFAULT_RATE = {"core": 10_000, "standard": 20_000}
"""Requests per minute per app and rate class, from the vendor's documentation."""
RATE_SAFETY = 0.9
"""Share of a rate limit chatroster uses, leaving room for other clients of the app."""
DEFAULT_CONCURRENCY = 8
CREDENTIAL_HINT = "provider.api_key (the environment variable it names)"

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

Outcome = str | None
"""One change's outcome: ``None`` when done, else why it failed."""


# ------------------------------------------------------------------------ settings


@dataclass(frozen=True)
class Settings:
    """The manifest's ``provider`` section for CometChat, checked before any request."""

    base_url: str
    app_id: str | None
    api_key: str = field(repr=False)
    rate: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_RATE))
    """Requests per minute per rate class, as the vendor counts them."""

    @classmethod
    def from_config(cls, config: ProviderConfig) -> Settings:
        settings = config.settings
        api_key = settings.get("api_key")
        if not api_key:
            raise ProviderError(
                "[cometchat] provider.api_key is not set: write api_key: ${COMETCHAT_API_KEY} "
                "in the manifest and set that environment variable to the app's REST API key"
            )
        app_id = settings.get("app_id")
        return cls(
            base_url=_base_url(settings.get("url"), app_id, settings.get("region", "us")),
            app_id=str(app_id) if app_id else None,
            api_key=str(api_key),
            rate={name: _rate(settings, name, default) for name, default in DEFAULT_RATE.items()},
        )


def _base_url(url: Any, app_id: Any, region: Any) -> str:
    """The API root up to and including ``/v3``; a bare host (the emulator's address)
    gets ``/v3`` added."""
    if url:
        parsed = httpx.URL(str(url).rstrip("/"))
        return str(parsed.copy_with(path="/v3")) if parsed.path in ("", "/") else str(parsed)
    if not app_id:
        raise ProviderError(
            "[cometchat] provider.app_id is not set: give the app's id (dashboard, "
            "Credentials), or provider.url for another endpoint such as the emulator"
        )
    if region not in REGIONS:
        raise ProviderError(
            f"[cometchat] provider.region {region!r} is not one of {', '.join(REGIONS)}"
        )
    return f"https://{app_id}.api-{region}.cometchat.io/v3"


def _rate(settings: Mapping[str, Any], name: str, default: float) -> float:
    """``rate_core`` / ``rate_standard``: the app's limit in requests per minute."""
    value = settings.get(f"rate_{name}", default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ProviderError(
            f"[cometchat] provider.rate_{name} {value!r} is not a positive number of "
            "requests per minute"
        )
    return float(value)


def _limiters(rate: Mapping[str, float]) -> dict[str, RateLimiter]:
    return {name: RateLimiter(n * RATE_SAFETY, per=60.0) for name, n in rate.items()}


@dataclass(frozen=True)
class HttpOptions:
    """How patient the client is; the defaults suit the vendor, tests shorten them."""

    timeout: float = 10.0
    retries: int = 6
    backoff: float = 0.25
    transport: httpx.BaseTransport | None = None


def open_cometchat(
    config: ProviderConfig, *, concurrency: int | None = None,
    http: HttpOptions = HttpOptions(),
) -> CometChatProvider:
    """The provider a manifest's ``provider`` section names; fails before any request
    when a setting is missing. ``concurrency`` is apply's --concurrency (default 8)."""
    return CometChatProvider(
        Settings.from_config(config), concurrency=concurrency or DEFAULT_CONCURRENCY, http=http
    )


# ----------------------------------------------------------------------- translation


def _user_from_api(data: Mapping[str, Any], *, active: bool) -> User:
    """A vendor user object as a neutral `User`; the marker becomes owner and watermark."""
    metadata = dict(data.get("metadata") or {})
    marker = _marker(metadata.pop(MARKER_KEY, None))
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


def _marker(value: Any) -> dict[str, Any]:
    """The marker as stored, tolerating a foreign or damaged value (treated as none)."""
    if not isinstance(value, Mapping):
        return {}
    marker: dict[str, Any] = {}
    if isinstance(value.get("owner"), str):
        marker["owner"] = value["owner"]
    if isinstance(value.get("tokens_valid_after"), (int, float)):
        marker["tokens_valid_after"] = int(value["tokens_valid_after"])
    return marker


def _from_epoch(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def _epoch(value: Any) -> int:
    """An ISO-8601 time from a change as unix seconds (UTC when no offset is given)."""
    try:
        return int(utc(datetime.fromisoformat(str(value))).timestamp())
    except ValueError:
        raise ProviderError(f"{value!r} is not an ISO-8601 time") from None


def _credential_hint(api_key: str) -> str:
    """Which setting to check for a refused key: the manifest loader substitutes
    ``${VAR}`` without keeping the name, so the variable holding the key is looked up."""
    names = sorted(name for name, value in os.environ.items() if value == api_key)
    if names:
        return f"the environment variable {' or '.join(names)} (provider.api_key)"
    return CREDENTIAL_HINT


def _chunks(items: Sequence[str], size: int) -> list[list[str]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


# -------------------------------------------------------------------------- provider


class CometChatProvider(Provider):
    type = "cometchat"
    capabilities = CAPABILITIES["cometchat"]

    def __init__(
        self, settings: Settings, *, concurrency: int = DEFAULT_CONCURRENCY,
        http: HttpOptions = HttpOptions(),
    ) -> None:
        self.settings = settings
        self.concurrency = max(1, concurrency)
        self.http = HttpClient(
            [settings.base_url],
            label="cometchat",
            headers=self._headers,
            describe=describe_error,
            limiters=_limiters(settings.rate),
            timeout=http.timeout,
            max_retries=http.retries,
            secrets=(settings.api_key,),
            transport=http.transport,
            backoff_base=http.backoff,
            pool_size=max(self.concurrency, 8),
        )
        # Raw metadata (marker included) of the users seen, for the read-modify-write of
        # the marker; filled by `read`, fetched for a user not seen.
        self._metadata: dict[str, dict[str, Any]] = {}
        # Users this provider created deactivated: their blocks (planned after creation)
        # need them active for a moment, which is harmless as they have no tokens yet.
        self._created_inactive: set[str] = set()
        self._lock = threading.Lock()

    def identity(self) -> dict[str, Any]:
        return {"type": self.type, "app_id": self.settings.app_id, "url": self.settings.base_url}

    def close(self) -> None:
        self.http.close()

    def _headers(self) -> dict[str, str]:
        headers = {"apikey": self.settings.api_key, "Accept": "application/json"}
        if self.settings.app_id:
            headers["appId"] = self.settings.app_id
        return headers

    # ------------------------------------------------------------------------ calls

    def _call(
        self, method: str, path: str, *, json: Any = None, params: Any = None, core: bool = False
    ) -> Any:
        """One API call; the ``data`` of a success, else `CometChatError` (`AuthError`
        for a refused key). Core operations (create user, delete user) have their own
        rate class at the vendor."""
        response = self.http.request(
            method, path, json=json, params=params, rate_class="core" if core else "standard"
        )
        if response.is_success:
            return _body(response, f"{method} {self.settings.base_url}{path}").get("data")
        raise self._error(method, path, response)

    def _error(self, method: str, path: str, response: httpx.Response) -> ProviderError:
        """The vendor's error answer as an exception naming the call, the vendor's code,
        message and per-field details."""
        code = str(_error_envelope(response).get("code") or f"HTTP_{response.status_code}")
        target = request_target(response, f"{method} {self.settings.base_url}{path}")
        said = describe_error(response)
        if response.status_code in (401, 403) or code.startswith("AUTH_ERR"):
            return AuthError(self.http.redacted(
                f"[cometchat] {target} was refused ({said}); "
                f"check {_credential_hint(self.settings.api_key)} and provider.app_id"
            ))
        return CometChatError(
            self.http.redacted(f"[cometchat] {target}: {said}"),
            code=code, status=response.status_code,
        )

    def _list(
        self, path: str, params: Mapping[str, Any], tally: Tally | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every row of a paged list, stopping at the last page or a short one;
        ``tally`` counts the rows page by page, out of the total the vendor gives."""
        page = 1
        while True:
            response = self.http.request(
                "GET", path, params={**params, "perPage": PER_PAGE, "page": page},
                rate_class="standard",
            )
            if not response.is_success:
                raise self._error("GET", path, response)
            body = _body(response, f"GET {self.settings.base_url}{path}")
            rows = body.get("data") or []
            pagination = (body.get("meta") or {}).get("pagination") or {}
            if tally is not None:
                tally.total = _int_or_none(pagination.get("total"))
                tally.add(len(rows))
            yield from rows
            if len(rows) < PER_PAGE or page >= int(pagination.get("total_pages", page)):
                return
            page += 1

    # ------------------------------------------------------------------------- read

    def read(self, scope: Scope) -> State:
        users: dict[str, User] = {}
        for row, user in self._all_users():
            if scope.everything or self._in_scope(user, scope):
                users[user.uid] = user
                self._remember(user.uid, row.get("metadata"))
        managed = users if scope.everything else scope.blocklists
        # Deactivated users answer as not found under /users/{uid}: their blocks are
        # kept, but cannot be read until they are reactivated (left unknown: None).
        blockers = [uid for uid in managed if uid in users and users[uid].active]
        tally = self.tally("blocklists", len(blockers))

        def blocklist(uid: str) -> frozenset[str]:
            blocked = self._blocklist(uid)
            tally.add()
            return blocked

        for uid, blocked in run_concurrently(blocklist, blockers, self.concurrency):
            if isinstance(blocked, BaseException):
                raise blocked
            users[uid] = users[uid].evolve(blocklist=blocked)
        # CometChat has no app-level bans: always none.
        return State(users=users, bans={})

    @staticmethod
    def _in_scope(user: User, scope: Scope) -> bool:
        return (
            user.uid in scope.uids
            or user.uid in scope.extra_uids
            or (scope.owned and user.owner == scope.owner)
        )

    def _all_users(self) -> Iterator[tuple[dict[str, Any], User]]:
        """Every user of the app, as the vendor's row and as a `User`."""
        listings = ((True, {"withTags": "true"}),
                    (False, {"withTags": "true", "onlyDeactivated": "true"}))
        for active, params in listings:
            tally = self.tally("active users" if active else "deactivated users")
            for row in self._list("/users", params, tally):
                yield row, _user_from_api(row, active=active)

    def _blocklist(self, uid: str) -> frozenset[str]:
        rows = self._list(f"/users/{uid}/blockedusers", {"direction": "blockedByMe"})
        # The direction parameter is the SDK's; filter again in case it is ignored.
        return frozenset(row["uid"] for row in rows if row.get("blockedByMe", True))

    # ----------------------------------------------------------- marker bookkeeping

    def _remember(self, uid: str, metadata: Any) -> None:
        with self._lock:
            self._metadata[uid] = dict(metadata) if isinstance(metadata, Mapping) else {}

    def _current_metadata(self, uid: str) -> dict[str, Any]:
        """The user's raw metadata, marker included: as last read, or fetched."""
        with self._lock:
            known = self._metadata.get(uid)
        if known is None:
            data = self._call("GET", f"/users/{uid}")
            self._remember(uid, data.get("metadata"))
            known = dict(data.get("metadata") or {})
        return dict(known)

    def _write_marker(self, uid: str, **marker: Any) -> Outcome:
        """Merge ``marker`` into the user's marker, keeping the rest of its metadata."""
        metadata = self._current_metadata(uid)
        merged = {**_marker(metadata.pop(MARKER_KEY, None)), **marker}
        data = self._call("PUT", f"/users/{uid}", json=_user_to_api({}, merged, metadata))
        self._remember(uid, data.get("metadata"))
        return None

    # ------------------------------------------------------------------------ write

    def create_users(self, changes: Sequence[Change]) -> None:
        failed = self._each(changes, self._create)
        inactive = [c for c in changes if c.after.get("active") is False and c.key not in failed]
        failed.update(self._bulk_active(inactive, active=False))
        self._created_inactive.update(c.uid for c in inactive if c.key not in failed)
        raise_if(failed)

    def adopt_users(self, changes: Sequence[Change]) -> None:
        raise_if(self._each(changes, self._adopt))

    def update_users(self, changes: Sequence[Change]) -> None:
        raise_if(self._each(changes, self._update))

    def deactivate_users(self, changes: Sequence[Change]) -> None:
        raise_if(self._bulk_active(changes, active=False))

    def reactivate_users(self, changes: Sequence[Change]) -> None:
        raise_if(self._bulk_active(changes, active=True))

    def delete_users(self, changes: Sequence[Change]) -> None:
        raise_if(self._each(changes, self._delete))

    def add_blocks(self, changes: Sequence[Change]) -> None:
        # The vendor refuses blocks by a deactivated user; one created deactivated in
        # this run is reactivated for the call (the planner puts blocks after creation).
        waking = sorted({c.uid for c in changes} & self._created_inactive)
        if not waking:
            raise_if(self._blocks(changes, "POST"))
            return
        self._set_active(waking, True)
        try:
            failed = self._blocks(changes, "POST")
        finally:
            self._set_active(waking, False)
        raise_if(failed)

    def remove_blocks(self, changes: Sequence[Change]) -> None:
        raise_if(self._blocks(changes, "DELETE"))

    def expire_tokens(self, changes: Sequence[Change]) -> None:
        raise_if(self._each(changes, self._expire))

    def _each(self, changes: Sequence[Change], write: Callable[[Change], Outcome]) -> dict[str, str]:
        """Run ``write`` over the changes concurrently; the failures by change key."""
        failed: dict[str, str] = {}
        for change, outcome in run_concurrently(write, changes, self.concurrency):
            problem = _problem(change.uid, outcome)
            if problem is not None:
                failed[change.key] = problem
        return failed

    # One function per action; each returns why its change failed, or None.

    def _create(self, change: Change) -> Outcome:
        after = change.after
        marker = {"owner": after["owner"]}
        if after.get("tokens_valid_after") is not None:
            marker["tokens_valid_after"] = _epoch(after["tokens_valid_after"])
        body = {"uid": change.uid, **_user_to_api(after, marker, {})}
        try:
            data = self._call("POST", "/users", json=body, core=True)
        except CometChatError as exc:
            if exc.code != "ERR_UID_ALREADY_EXISTS":
                raise
            return self._verify_created(change.uid, after["owner"])
        self._remember(change.uid, data.get("metadata"))
        if "tokens_valid_after" in marker:
            self._call("DELETE", f"/users/{change.uid}/auth_tokens")
        return None

    def _verify_created(self, uid: str, owner: str) -> Outcome:
        """After "already exists": done if the user carries our marker (an earlier attempt
        of this very request succeeded), else a failure that says what to do."""
        try:
            metadata = self._current_metadata(uid)
        except CometChatError as exc:
            if exc.code != "ERR_UID_NOT_FOUND":
                raise
            return f"'{uid}' already exists on CometChat as a deactivated user; run plan again"
        if _marker(metadata.get(MARKER_KEY)).get("owner") == owner:
            return None
        return f"'{uid}' already exists on CometChat and is not owned by '{owner}'; run plan again"

    def _adopt(self, change: Change) -> Outcome:
        return self._write_marker(change.uid, owner=change.after["owner"])

    def _update(self, change: Change) -> Outcome:
        fields = change.after
        # New metadata replaces the old as a whole, so the current marker is merged in.
        marker = {}
        if "metadata" in fields:
            marker = _marker(self._current_metadata(change.uid).get(MARKER_KEY))
        body = _user_to_api(fields, marker, None)
        if body:
            data = self._call("PUT", f"/users/{change.uid}", json=body)
            self._remember(change.uid, data.get("metadata"))
        return None

    def _delete(self, change: Change) -> Outcome:
        try:
            self._call("DELETE", f"/users/{change.uid}", json={"permanent": True}, core=True)
        except CometChatError as exc:
            # Gone already: a retried delete whose first attempt succeeded.
            if exc.code != "ERR_UID_NOT_FOUND":
                raise
        return None

    def _expire(self, change: Change) -> Outcome:
        # Flush first, then record the watermark: if the second step fails, the next
        # plan flushes again, which is harmless.
        watermark = _epoch(change.after["tokens_valid_after"])
        self._call("DELETE", f"/users/{change.uid}/auth_tokens")
        return self._write_marker(change.uid, tokens_valid_after=watermark)

    def _set_active(self, uids: Sequence[str], active: bool) -> None:
        """Deactivate or reactivate users outside any change (all or nothing)."""
        changes = [Change(Action.UPDATE_USER, uid) for uid in uids]
        failed = self._bulk_active(changes, active=active)
        if failed:
            raise ProviderError("; ".join(sorted(failed.values())))

    def _bulk_active(self, changes: Sequence[Change], *, active: bool) -> dict[str, str]:
        """Deactivate or reactivate 25 uids a call; a uid the vendor does not name back
        in its answer failed (it does not exist)."""
        key, answer = ("uidsToActivate", "nonDeactivatedUids") if active else (
            "uidsToDeactivate", "deactivatedUids")
        method = "PUT" if active else "DELETE"
        by_uid = {change.uid: change for change in changes}

        def send(uids: list[str]) -> set[str]:
            data = self._call(method, "/users", json={key: uids})
            return {str(uid).lower() for uid in (data or {}).get(answer, [])}

        failed: dict[str, str] = {}
        for uids, outcome in run_concurrently(send, _chunks(list(by_uid), BULK_MAX),
                                              self.concurrency):
            for uid in uids:
                if isinstance(outcome, BaseException):
                    problem = _problem(uid, outcome)
                elif uid not in outcome:
                    problem = f"CometChat did not {'re' if active else 'de'}activate '{uid}'"
                else:
                    continue
                failed[by_uid[uid].key] = problem or "failed"
        return failed

    def _blocks(self, changes: Sequence[Change], method: str) -> dict[str, str]:
        """Block or unblock, one call per blocker (more only past `BLOCK_CHUNK` targets).
        A target the vendor reports as failed fails alone, unless the vendor says it is
        already in the wanted state."""
        by_blocker: dict[str, dict[str, Change]] = defaultdict(dict)
        for change in changes:
            by_blocker[change.uid][change.target or ""] = change
        calls = [(uid, chunk) for uid, targets in by_blocker.items()
                 for chunk in _chunks(list(targets), BLOCK_CHUNK)]

        def send(call: tuple[str, list[str]]) -> Any:
            uid, targets = call
            return self._call(method, f"/users/{uid}/blockedusers", json={"blockedUids": targets})

        failed: dict[str, str] = {}
        for (uid, targets), outcome in run_concurrently(send, calls, self.concurrency):
            for target in targets:
                problem = _block_problem(uid, target, outcome)
                if problem is not None:
                    failed[by_blocker[uid][target].key] = problem
        return failed


# ------------------------------------------------------------------------- outcomes


def _problem(uid: str, outcome: Any) -> str | None:
    """Why a change failed, from what its write returned or raised (by the rule of
    `providers.batches`, worded for CometChat); ``None``: done."""
    if isinstance(outcome, BaseException):
        return reason(outcome, lambda error: _explain(uid, error))
    return outcome if isinstance(outcome, str) else None


def _explain(uid: str, error: ProviderError) -> str | None:
    if isinstance(error, CometChatError) and error.code == "ERR_UID_NOT_FOUND":
        return (
            f"{error}; '{uid}' does not exist on CometChat or is deactivated (CometChat "
            "refuses changes to deactivated users; set active: true to change it)"
        )
    return None


def _block_problem(uid: str, target: str, outcome: Any) -> str | None:
    if isinstance(outcome, BaseException):
        return _problem(uid, outcome)
    result = (outcome or {}).get(target) or (outcome or {}).get(target.lower())
    if not isinstance(result, Mapping):
        return f"CometChat gave no result for '{uid}' -> '{target}'"
    message = str(result.get("message", ""))
    if result.get("success") or "already" in message.lower():
        return None
    return f"'{uid}' -> '{target}': {message or 'refused by CometChat'}"


def _body(response: httpx.Response, fallback: str) -> dict[str, Any]:
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


def _error_envelope(response: httpx.Response) -> dict[str, Any]:
    """``error`` of the vendor's ``{"error": {"code", "message", "details"}}``, or {}."""
    body = _json(response)
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def describe_error(response: httpx.Response) -> str:
    """The vendor's words for a failed answer: ``HTTP 400 ERR_BAD_REQUEST: Failed to
    validate the data. (role: The role agent does not exist.)``."""
    error = _error_envelope(response)
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


def _int_or_none(value: Any) -> int | None:
    """A count from the vendor's pagination, if it gave a usable one."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


