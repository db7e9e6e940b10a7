"""How chatroster reaches one CometChat app: checked settings, HTTP with the app's REST
API key through the shared HTTP layer, the call wrapper that turns the vendor's answers
into data or errors, paging, and one method per read endpoint.

Reading (the fewest calls the documented API allows; CometChat has no batch GET by uid):
  GET /users?perPage=1000&withTags=true              active users, page by page
  GET /users?perPage=1000&withTags=true&onlyDeactivated=true   deactivated users
  GET /users/{uid}/blockedusers?direction=blockedByMe&perPage=1000   per managed blocklist

Writes are composed by the provider (`provider.py`) from `CometChatClient.call`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from ...errors import AuthError, CometChatError, ProviderError
from ...http import HttpClient, RateLimiter, request_target, run_concurrently
from ...http.paging import Page, numbered_pages
from ...model import ProviderConfig
from ..base import Tally
from .api import PER_PAGE, REGIONS, body_of, describe_error, error_envelope

DEFAULT_RATE = {"core": 10_000, "standard": 20_000}
"""Requests per minute per app and rate class, from the vendor's documentation."""
RATE_SAFETY = 0.9
"""Share of a rate limit chatroster uses, leaving room for other clients of the app."""
DEFAULT_CONCURRENCY = 8
CREDENTIAL_HINT = "provider.api_key (the environment variable it names)"


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
        raise ProviderError(f"[cometchat] provider.region {region!r} is not one of {', '.join(REGIONS)}")
    return f"https://{app_id}.api-{region}.cometchat.io/v3"


def _rate(settings: Mapping[str, Any], name: str, default: float) -> float:
    """``rate_core`` / ``rate_standard``: the app's limit in requests per minute."""
    value = settings.get(f"rate_{name}", default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ProviderError(
            f"[cometchat] provider.rate_{name} {value!r} is not a positive number of requests per minute"
        )
    return float(value)


def _limiters(rate: Mapping[str, float]) -> dict[str, RateLimiter]:
    return {name: RateLimiter(n * RATE_SAFETY, per=60.0) for name, n in rate.items()}


def _credential_hint(api_key: str) -> str:
    """Which setting to check for a refused key: the manifest loader substitutes
    ``${VAR}`` without keeping the name, so the variable holding the key is looked up."""
    names = sorted(name for name, value in os.environ.items() if value == api_key)
    if names:
        return f"the environment variable {' or '.join(names)} (provider.api_key)"
    return CREDENTIAL_HINT


@dataclass(frozen=True)
class HttpOptions:
    """How patient the client is; the defaults suit the vendor, tests shorten them."""

    timeout: float = 10.0
    retries: int = 6
    backoff: float = 0.25
    transport: httpx.BaseTransport | None = None


DEFAULT_HTTP = HttpOptions()


class CometChatClient:
    """Calls to one app. Core operations (create user, delete user) and the rest have
    separate rate limits at the vendor, so each has its own limiter."""

    def __init__(
        self,
        settings: Settings,
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        http: HttpOptions = DEFAULT_HTTP,
    ) -> None:
        self.settings = settings
        self.concurrency = concurrency
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

    def close(self) -> None:
        self.http.close()

    def _headers(self) -> dict[str, str]:
        headers = {"apikey": self.settings.api_key, "Accept": "application/json"}
        if self.settings.app_id:
            headers["appId"] = self.settings.app_id
        return headers

    def call(
        self, method: str, path: str, *, json: Any = None, params: Any = None, core: bool = False
    ) -> Any:
        """One API call; the ``data`` of a success, else `CometChatError` (`AuthError`
        for a refused key). Core operations (create user, delete user) have their own
        rate class at the vendor."""
        response = self.http.request(
            method, path, json=json, params=params, rate_class="core" if core else "standard"
        )
        if response.is_success:
            return body_of(response, f"{method} {self.settings.base_url}{path}").get("data")
        raise self._error(method, path, response)

    def _error(self, method: str, path: str, response: httpx.Response) -> ProviderError:
        """The vendor's error answer as an exception naming the call, the vendor's code,
        message and per-field details."""
        code = str(error_envelope(response).get("code") or f"HTTP_{response.status_code}")
        target = request_target(response, f"{method} {self.settings.base_url}{path}")
        said = describe_error(response)
        if response.status_code in (401, 403) or code.startswith("AUTH_ERR"):
            return AuthError(
                self.http.redacted(
                    f"[cometchat] {target} was refused ({said}); "
                    f"check {_credential_hint(self.settings.api_key)} and provider.app_id"
                )
            )
        return CometChatError(
            self.http.redacted(f"[cometchat] {target}: {said}"),
            code=code,
            status=response.status_code,
        )

    # --------------------------------------------------------------------- pagination

    def pages(
        self,
        path: str,
        params: Mapping[str, Any],
        tally: Tally | None = None,
        *,
        concurrency: int = 1,
    ) -> Iterator[dict[str, Any]]:
        """Every row of a paged list, in order, stopping at the last page or a short one;
        with ``concurrency`` above 1, the pages after the first (which gives their
        count) are fetched that many at a time. ``tally`` counts the rows page by page,
        out of the total the vendor gives."""

        def fetch(page: int) -> Page[dict[str, Any]]:
            response = self.http.request(
                "GET",
                path,
                params={**params, "perPage": PER_PAGE, "page": page},
                rate_class="standard",
            )
            if not response.is_success:
                raise self._error("GET", path, response)
            body = body_of(response, f"GET {self.settings.base_url}{path}")
            rows = body.get("data") or []
            pagination = (body.get("meta") or {}).get("pagination") or {}
            pages = _int_or_none(pagination.get("total_pages"))
            if tally is not None:
                tally.total = _int_or_none(pagination.get("total"))
                tally.add(len(rows))
            last = len(rows) < PER_PAGE or (pages is not None and page >= pages)
            return Page(rows, last, pages)

        return numbered_pages(fetch, concurrency)

    # -------------------------------------------------------------------------- reads

    def users(self, *, active: bool, tally: Tally | None = None) -> Iterator[dict[str, Any]]:
        """The rows of the active (or the deactivated) users' listing, tags included."""
        params = {"withTags": "true"} if active else {"withTags": "true", "onlyDeactivated": "true"}
        return self.pages("/users", params, tally, concurrency=self.concurrency)

    def user(self, uid: str) -> Any:
        """One user object, marker and all (``GET /users/{uid}``)."""
        return self.call("GET", f"/users/{uid}")

    def blocklist(self, uid: str) -> frozenset[str]:
        rows = self.pages(f"/users/{uid}/blockedusers", {"direction": "blockedByMe"})
        # The direction parameter is the SDK's; filter again in case it is ignored.
        return frozenset(row["uid"] for row in rows if row.get("blockedByMe", True))

    # --------------------------------------------------------------------- bulk reads
    # Reads of many calls run concurrently under one bound; any failure fails the read
    # (no plan on half data).

    def blocklists(self, uids: Sequence[str], tally: Tally | None = None) -> dict[str, frozenset[str]]:
        """The blocklist of each uid, concurrently (the vendor has no bulk read of blocks)."""

        def blocklist(uid: str) -> frozenset[str]:
            blocked = self.blocklist(uid)
            if tally is not None:
                tally.add()
            return blocked

        found: dict[str, frozenset[str]] = {}
        for uid, blocked in run_concurrently(blocklist, uids, self.concurrency):
            if isinstance(blocked, BaseException):
                raise blocked
            found[uid] = blocked
        return found


def _int_or_none(value: Any) -> int | None:
    """A count from the vendor's pagination, if it gave a usable one."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None
