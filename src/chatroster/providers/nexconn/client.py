"""How chatroster reaches one Nexconn app: checked settings, signed HTTP through the
shared HTTP layer, one method per read endpoint (pagination included), and the reads
that take many calls (one per user, or one per chunk of users), run concurrently.

Writes are composed by the provider (`provider.py`) from `NexconnClient.call`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal, TypeVar

import httpx

from ...changes import Change
from ...errors import ProviderError, Refusal
from ...http import HttpClient, RateLimiter, new_request_id, run_concurrently
from ...http.paging import Page, numbered_pages
from ...model import Ban, ProviderConfig
from ..base import Tally
from ..requests import RequestIds
from . import api
from .api import Endpoint, HostedProfile, Push, user_not_found

DEFAULT_RATE = 100.0
"""Requests per second per endpoint and App Key: the vendor's default plan."""
RATE_MARGIN = 0.9
"""Run 10% below the vendor's limit, so that bursts and clock drift do not become 429s."""
DEFAULT_CONCURRENCY = 8
DEFAULT_TIMEOUT = 10.0
DEFAULT_RETRIES = 6
DEFAULT_BACKOFF = 0.25
ENVIRONMENTS = ("production", "development")

V = TypeVar("V")


@dataclass(frozen=True)
class Settings:
    """How to reach one app. The manifest gives the first four (`from_config`); the
    rest are tuning that code may change (tests shorten the backoff)."""

    base_urls: tuple[str, ...]
    app_key: str
    app_secret: str
    rate: float = DEFAULT_RATE
    concurrency: int = DEFAULT_CONCURRENCY
    timeout: float = DEFAULT_TIMEOUT
    retries: int = DEFAULT_RETRIES
    backoff: float = DEFAULT_BACKOFF
    environment: str = "production"
    """``development``: the app registers at most ``development_user_limit`` users
    (see `Capabilities`)."""

    @classmethod
    def from_config(cls, config: ProviderConfig, concurrency: int | None = None) -> Settings:
        """The manifest's ``provider`` section, checked: a missing credential is an
        error here, before any request."""
        given = config.settings
        return cls(
            base_urls=_base_urls(given),
            app_key=_secret(given, "app_key", "NEXCONN_APP_KEY"),
            app_secret=_secret(given, "app_secret", "NEXCONN_APP_SECRET"),
            rate=_rate(given.get("rate", DEFAULT_RATE)),
            concurrency=concurrency or DEFAULT_CONCURRENCY,
            environment=_environment(given.get("environment", "production")),
        )


def _base_urls(given: Mapping[str, Any]) -> tuple[str, ...]:
    """``url`` (it overrides ``region``) or the region's hosts; backup last."""
    url, region, backup = given.get("url"), given.get("region"), given.get("backup_url")
    if url:
        return (str(url), str(backup)) if backup else (str(url),)
    if region in api.REGIONS:
        primary, default_backup = api.REGIONS[region]
        return (primary, str(backup or default_backup))
    if region:
        raise ProviderError(
            f"[nexconn] provider.region {region!r} is not known; set it to one of "
            f"{', '.join(api.REGIONS)}, or set provider.url to the API host"
        )
    raise ProviderError("[nexconn] set provider.region (sg, us or sau) or provider.url")


def _secret(given: Mapping[str, Any], key: str, variable: str) -> str:
    value = given.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ProviderError(
            f"[nexconn] provider.{key} is missing or empty; write `{key}: ${{{variable}}}` "
            f"in the manifest and set the environment variable it names ({variable})"
        )
    return value


def _rate(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ProviderError(
            f"[nexconn] provider.rate must be a positive number of requests per second, not {value!r}"
        )
    return float(value)


def _environment(value: Any) -> str:
    if value not in ENVIRONMENTS:
        raise ProviderError(
            f"[nexconn] provider.environment {value!r} is not known; set it to production "
            "or development (the app's environment in the Nexconn console)"
        )
    return str(value)


def _limiter(rate: float, endpoint: Endpoint) -> RateLimiter:
    """The endpoint's pace: 10% under the vendor's limit, with a burst of half a second's
    worth, so that the vendor's bucket keeps room for requests that arrive bunched."""
    per_second = rate * RATE_MARGIN * endpoint.rate_factor
    return RateLimiter(per_second, burst=max(1, int(per_second / 2)))


class NexconnClient:
    """Signed calls to one app. v4 and the legacy endpoints differ in how they sign and
    encode, so each has its own `HttpClient`; both share one rate limiter per endpoint,
    as the vendor counts per App Key and endpoint. Every call carries an
    ``X-Request-ID``; those of write calls are noted, for the changes they serve, in
    `request_ids` (`providers.requests`)."""

    def __init__(self, settings: Settings, transport: httpx.BaseTransport | None = None) -> None:
        limiters = {endpoint.path: _limiter(settings.rate, endpoint) for endpoint in api.ENDPOINTS}
        self.concurrency = settings.concurrency
        key, secret = settings.app_key, settings.app_secret

        def client(unit: Literal["ms", "s"]) -> HttpClient:
            return HttpClient(
                settings.base_urls,
                label="nexconn",
                headers=lambda: api.signed_headers(key, secret, unit),  # afresh per attempt
                describe=api.describe_error,
                limiters=limiters,
                timeout=settings.timeout,
                max_retries=settings.retries,
                secrets=(key, secret),
                transport=transport,
                backoff_base=settings.backoff,
                backoff_cap=max(64 * settings.backoff, 1.0),
                pool_size=max(32, 2 * settings.concurrency),
                request_id_header=api.REQUEST_ID_HEADER,
            )

        self._v4 = client("ms")
        self._legacy = client("s")
        self.request_ids = RequestIds()

    @property
    def counters(self) -> dict[str, int]:
        """Requests, retries, 429s and failovers of both clients, summed."""
        legacy = self._legacy.counters
        return {name: count + legacy[name] for name, count in self._v4.counters.items()}

    def close(self) -> None:
        self._v4.close()
        self._legacy.close()

    def register(self, change: Change, digest: str | None = None) -> None:
        """Register the user, then write its whole hosted profile at once: profile, the
        copy of name and avatar, the ownership marker and the token watermark.

        On Nexconn, issuing a token is what registers a user; it is idempotent, so a
        create interrupted half-way is finished by the next apply. Both calls go from
        one worker, so that the two endpoints (200/s and 100/s) are busy at the same
        time. A new user needs no ``access-token/expire``: its only token was issued
        here and never handed out.
        """
        after = change.after
        # Translated first, so that a bad value fails the change with nothing written.
        hosted = HostedProfile().with_profile(after.get("profile") or {}).with_push(after)
        hosted = hosted.with_owner(str(after["owner"]))
        if digest:  # this write is the user's last of the apply (`carry_digests`)
            hosted = hosted.with_digest(digest)
        if after.get("tokens_valid_after"):
            hosted = hosted.with_tokens(api.required_time(change, "tokens_valid_after"))
        self.call(api.ISSUE, {"userId": change.uid, **api.push_to_api(after)})
        self.call(api.PROFILE_SET, hosted.to_api(change.uid))

    def call(self, endpoint: Endpoint, body: Mapping[str, Any]) -> dict[str, Any]:
        """One call; the payload of its answer, or `AuthError`/`Refusal`/`TransportError`.
        A write's request id is noted whatever its outcome: a failed change lists the
        calls that failed it, and a call whose answer was lost may have taken effect."""
        sent = new_request_id()
        try:
            response = self._send(endpoint, body, sent)
        except BaseException:
            if not endpoint.reads:
                self.request_ids.note(sent)
            raise
        if not endpoint.reads:
            self.request_ids.note(api.echoed_request_id(response) or sent)
        return api.result_of(response, endpoint)

    def _send(self, endpoint: Endpoint, body: Mapping[str, Any], request_id: str) -> httpx.Response:
        if endpoint.legacy:  # form-encoded; a list is the same key repeated
            return self._legacy.request(
                "POST", endpoint.path, data=dict(body), rate_class=endpoint.path, request_id=request_id
            )
        return self._v4.request(
            "POST", endpoint.path, json=dict(body), rate_class=endpoint.path, request_id=request_id
        )

    # --------------------------------------------------------------------- pagination

    def pages(
        self,
        endpoint: Endpoint,
        key: str,
        body: Mapping[str, Any] | None = None,
        tally: Tally | None = None,
    ) -> Iterator[Any]:
        """Every item of a ``page``/``pageSize`` list, in order; a short page is the
        last one. Pages after the first are fetched several at a time, up to
        `concurrency` (the list gives no count, so a long read may ask for a few empty
        pages past its end). ``tally`` counts the items,
        page by page."""

        def fetch(page: int) -> Page[Any]:
            found = self.call(endpoint, {**(body or {}), "page": page, "pageSize": endpoint.per_call})
            items = found.get(key) or []
            if tally is not None:
                tally.add(len(items))
            return Page(items, last=len(items) < endpoint.per_call)

        return numbered_pages(fetch, self.concurrency)

    def cursor_pages(self, endpoint: Endpoint, key: str, body: Mapping[str, Any]) -> Iterator[Any]:
        """Every item of a cursor list (``pageToken``; the legacy API names it ``next``)."""
        token = None
        while True:
            found = self.call(endpoint, {**body, **({"pageToken": token} if token else {})})
            items = found.get(key) or []
            yield from items
            token = found.get("pageToken") or found.get("next")
            if not token or not items:
                return

    # -------------------------------------------------------------------------- reads

    def push(self, uid: str) -> Push | None:
        """A user's push name and avatar; ``None`` if not found (or soft-deleted)."""
        try:
            return api.push_from_api(self.call(api.USER_GET, {"userId": uid}))
        except Refusal as exc:
            if user_not_found(exc):
                return None
            raise

    def online(self, uid: str) -> bool | None:
        """Whether the user is connected (``status`` "1"); ``None`` if not found."""
        try:
            found = self.call(api.CONNECTION_STATUS, {"userId": uid})
        except Refusal as exc:
            if user_not_found(exc):
                return None
            raise
        return str(found.get("status")) == "1"

    def soft_deleted(self, tally: Tally | None = None) -> set[str]:
        return set(self.pages(api.SOFT_DELETED_LIST, "userIds", tally=tally))

    def bans(self, tally: Tally | None = None) -> dict[str, Ban]:
        return {
            item["userId"]: Ban(item["userId"], api.parse_time(item["banExpiresAt"]))
            for item in self.pages(api.BAN_LIST, "bannedUsers", tally=tally)
        }

    def profile_list(self, tally: Tally | None = None) -> dict[str, HostedProfile]:
        """Every hosted profile, oldest registration first (stable while users are added)."""
        return {
            item["userId"]: HostedProfile.from_api(item)
            for item in self.pages(api.PROFILE_LIST, "users", {"order": 0}, tally)
        }

    def profiles(self, uids: Sequence[str]) -> dict[str, HostedProfile]:
        found = self.call(api.PROFILE_GET, {"userIds": list(uids)})
        return {item["userId"]: HostedProfile.from_api(item) for item in found.get("users") or []}

    def tags(self, uids: Sequence[str]) -> dict[str, tuple[str, ...]]:
        found = self.call(api.TAG_GET, {"userIds": list(uids)})
        return {item["userId"]: tuple(item.get("tags") or ()) for item in found.get("users") or []}

    def blocklist(self, uid: str) -> frozenset[str]:
        body = {"userId": uid, "pageSize": api.BLOCK_GET.per_call}
        return frozenset(self.cursor_pages(api.BLOCK_GET, "blockedUserIds", body))

    def whitelist(self, uid: str) -> frozenset[str]:
        body = {"userId": uid, "size": str(api.WHITELIST_GET.per_call)}
        return frozenset(self.cursor_pages(api.WHITELIST_GET, "users", body))

    def whitelist_mode(self, uid: str) -> bool:
        found = self.call(api.WHITE_MODE_GET, {"userId": uid})
        return str(found.get("whiteSetting", "0")) == "1"

    # --------------------------------------------------------------------- bulk reads
    # Reads of many calls run concurrently under one bound; any failure fails the read
    # (no plan on half data).

    def lists(
        self, *, with_bans: bool, with_profiles: bool, tally: Tally
    ) -> tuple[set[str], dict[str, Ban], dict[str, HostedProfile]]:
        """The soft-deleted users and, when asked, the bans and every hosted profile: the
        list endpoints, read together; ``tally`` counts their entries."""
        deleted: set[str] = set()
        bans: dict[str, Ban] = {}
        listed: dict[str, HostedProfile] = {}
        self._parallel(
            [
                lambda: deleted.update(self.soft_deleted(tally)),
                *([lambda: bans.update(self.bans(tally))] if with_bans else []),
                *([lambda: listed.update(self.profile_list(tally))] if with_profiles else []),
            ]
        )
        return deleted, bans, listed

    def pushes(self, uids: Sequence[str], tally: Tally | None = None) -> dict[str, Push]:
        """``user/get`` for each uid, concurrently; users not found are left out."""

        def get(uid: str) -> Push | None:
            push = self.push(uid)
            if tally is not None:
                tally.add()
            return push

        found: dict[str, Push] = {}
        for uid, outcome in run_concurrently(get, uids, self.concurrency):
            if isinstance(outcome, BaseException):
                raise outcome
            if outcome is not None:
                found[uid] = outcome
        return found

    def details(
        self,
        tagged: Sequence[str],
        profiled: Sequence[str],
        *,
        blocklists: Collection[str],
        whitelists: Collection[str],
        new_tally: Callable[[int], Tally],
    ) -> Details:
        """Tags, hosted profiles, and blocklists and whitelists (with their modes) of the
        uids given for each: one flat list of calls, so that they all run concurrently
        under one bound, counted on the tally ``new_tally`` makes for their number."""
        into = Details()
        jobs: list[Callable[[], None]] = [
            partial(_merge, into.tags, self.tags, part) for part in api.chunked(tagged, api.TAG_GET.per_call)
        ]
        jobs += [
            partial(_merge, into.profiles, self.profiles, part)
            for part in api.chunked(profiled, api.PROFILE_GET.per_call)
        ]
        for uid in sorted({*blocklists, *whitelists}):
            if uid in blocklists:
                jobs.append(partial(_put, into.blocklists, uid, self.blocklist))
            if uid in whitelists:
                jobs.append(partial(_put, into.whitelists, uid, self.whitelist))
                jobs.append(partial(_put, into.modes, uid, self.whitelist_mode))
        self._parallel(jobs, new_tally(len(jobs)))
        return into

    def _parallel(self, jobs: Sequence[Callable[[], None]], tally: Tally | None = None) -> None:
        """Run read jobs concurrently, each counted on ``tally``; any failure fails the
        read (no plan on half data)."""

        def run(job: Callable[[], None]) -> None:
            job()
            if tally is not None:
                tally.add()

        for _, outcome in run_concurrently(run, jobs, self.concurrency):
            if isinstance(outcome, BaseException):
                raise outcome


@dataclass
class Details:
    """What `NexconnClient.details` found, filled concurrently (one key per call)."""

    tags: dict[str, tuple[str, ...]] = field(default_factory=dict)
    profiles: dict[str, HostedProfile] = field(default_factory=dict)
    blocklists: dict[str, frozenset[str]] = field(default_factory=dict)
    whitelists: dict[str, frozenset[str]] = field(default_factory=dict)
    modes: dict[str, bool] = field(default_factory=dict)


def _merge(into: dict[str, V], read: Callable[[list[str]], Mapping[str, V]], uids: list[str]) -> None:
    into.update(read(uids))


def _put(into: dict[str, V], uid: str, read: Callable[[str], V]) -> None:
    into[uid] = read(uid)
