"""The emulator's ASGI application: both vendors' APIs on one port, over one store.

Routes: Nexconn v4 under ``/v4/...``, Nexconn's legacy whitelist endpoints under their
own paths (``/user/whitelist/add.json`` ...), CometChat under ``/v3/...`` (when its
module is present), and the emulator's own ``/_emulator/stats``, ``/_emulator/requests``
(the latest requests that carried an ``X-Request-ID``, see `stats`), ``/_emulator/reset``
and ``/_emulator/info``. Around the routes, from the outside in:

1. `LatencyMiddleware` holds every API request for ``--latency`` milliseconds, as a
   network between client and vendor would (off by default);
2. `StatsMiddleware` counts every answered API request by endpoint and status;
3. `RateLimitMiddleware` refuses requests over the vendor's rate limit (off by default);
4. `FaultMiddleware` makes a chosen fraction of requests fail (off by default).

So a request refused by the rate limit never draws a fault, and ``/_emulator/*`` is
never delayed, counted, limited or faulted.
"""

from __future__ import annotations

import asyncio
import importlib
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Match, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..store import Store
from . import nexconn
from .config import EmulatorConfig
from .faults import DROP_EXTENSION, Fault, FaultPlan
from .ratelimit import Decision, FixedWindow, TokenBucket
from .signing import SignatureVerifier
from .stats import DROPPED, REQUEST_ID_HEADER, Stats

CONTROL_PREFIX = "/_emulator"
COMETCHAT_PATH = re.compile(r"^/v3(\.\d+)?(/|$)")
"""CometChat's REST API v3; its SDKs spell the prefix ``/v3.0``."""
NEXCONN = "nexconn"
COMETCHAT = "cometchat"

#: Nexconn limits each endpoint per App Key; these differ from the default 100/s
#: (reference: issue 200/s, tag batch set 10/s), so they scale with --nexconn-rate.
NEXCONN_RATE_FACTORS = {
    "/v4/auth/access-token/issue": 2.0,
    "/v4/user/tag/batch/set": 0.1,
}
COMETCHAT_STANDARD_LIMIT = 20_000
"""Requests per minute in CometChat's ``standard`` class on paid plans (reference)."""


def vendor_of(path: str) -> str | None:
    """Whose API a path belongs to; None for the emulator's own endpoints."""
    if path == CONTROL_PREFIX or path.startswith(CONTROL_PREFIX + "/"):
        return None
    if COMETCHAT_PATH.match(path):
        return COMETCHAT
    return NEXCONN  # /v4/..., the legacy /user/... paths, and anything unknown


def load_cometchat() -> ModuleType | None:
    """The CometChat module, or None while it does not exist (its errors still raise)."""
    name = f"{__package__}.cometchat"
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name == name:
            return None
        raise


# ------------------------------------------------------------------ vendor answers

#: The code each vendor puts in the body of an HTTP status the emulator itself answers.
NEXCONN_CODES = {404: nexconn.NOT_FOUND, 429: nexconn.RATE_LIMITED}  # else 1000, internal
COMETCHAT_CODES = {404: "ERR_API_NOT_FOUND", 500: "ERR_EXCEPTION", 503: "ERR_OPERATION_FAILED"}


@dataclass
class Vendors:
    """How each vendor words the answers the emulator itself gives (404s, faults, 429s)."""

    cometchat: ModuleType | None

    def error(self, vendor: str, status: int, reason: str) -> Response:
        if vendor == COMETCHAT:
            code = COMETCHAT_CODES.get(status, "ERR_EXCEPTION")
            return self._cometchat_error(status, code, reason)
        number = NEXCONN_CODES.get(status, nexconn.INTERNAL_ERROR)
        return nexconn.error_response(status, number, reason)

    def _cometchat_error(self, status: int, code: str, message: str) -> Response:
        if self.cometchat is not None:
            response: Response = self.cometchat.error_response(status, code, message)
            return response
        return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)

    def throttled(self, vendor: str, decision: Decision) -> Response:
        if vendor == COMETCHAT and self.cometchat is not None:
            response: Response = self.cometchat.rate_limited_response(
                decision.limit, decision.reset_epoch, decision.retry_after
            )
            return response
        if vendor == COMETCHAT:
            return self._cometchat_error(429, "ERR_TOO_MANY_REQUESTS", "Too many requests")
        return nexconn.error_response(
            429, nexconn.RATE_LIMITED, "Too many requests: over the rate limit of this App-Key"
        )


# ---------------------------------------------------------------------- middleware


def endpoint_label(routes: Sequence[BaseRoute], scope: Scope) -> str:
    """``"METHOD /path/{template}"``, so counters stay few whatever the path parameters."""
    template = _template(routes, scope)
    return f"{scope['method']} {template or '(unknown route)'}"


def _template(routes: Sequence[BaseRoute], scope: Scope) -> str | None:
    for route in routes:
        match, child = route.matches(scope)
        if match == Match.NONE:
            continue
        path: str = getattr(route, "path", "")
        if isinstance(route, Mount):
            inner = _template(route.routes, {**scope, **child})
            return None if inner is None else path + inner
        return path
    return None


class LatencyMiddleware:
    """Every API answer comes ``seconds`` later, as over a real network; requests wait
    concurrently, so the delay costs a client round trips, not the server's capacity."""

    def __init__(
        self,
        app: ASGIApp,
        seconds: float,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.app, self.seconds, self.sleep = app, seconds, sleep

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.seconds > 0 and scope["type"] == "http" and vendor_of(scope["path"]) is not None:
            await self.sleep(self.seconds)
        await self.app(scope, receive, send)


class StatsMiddleware:
    def __init__(self, app: ASGIApp, stats: Stats, routes: Sequence[BaseRoute]) -> None:
        self.app, self.stats, self.routes = app, stats, routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or vendor_of(scope["path"]) is None:
            await self.app(scope, receive, send)
            return
        # Labelled before routing, which rewrites parts of the scope (``root_path``).
        label = endpoint_label(self.routes, dict(scope))
        request_id = _header(scope, REQUEST_ID_HEADER)
        status: int | str = DROPPED

        async def counting_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        except ClientDisconnect:
            # The client went away while sending its request (a killed apply): nothing
            # was done and nobody is left to answer, so it is a dropped connection,
            # not a server error with a traceback in the log.
            status = DROPPED
        except Exception:
            status = 500  # the outermost error handler answers it
            raise
        finally:
            self.stats.record(label, status, request_id)


def _header(scope: Scope, name: str) -> str | None:
    """A request header's value (``name`` in lower case), or None."""
    wanted = name.encode("latin-1")
    for key, value in scope.get("headers", ()):
        if key.lower() == wanted:
            return bytes(value).decode("latin-1")
    return None


class RateLimits:
    """The limiters of one emulator: Nexconn per App Key and endpoint, CometChat per class."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.nexconn: dict[float, TokenBucket] = {}
        if config.nexconn_rate:
            for factor in {1.0, *NEXCONN_RATE_FACTORS.values()}:
                self.nexconn[factor] = TokenBucket(config.nexconn_rate * factor)
        self.cometchat = FixedWindow(config.cometchat_rate) if config.cometchat_rate else None
        # CometChat sends its limit headers on every answer, limited or not: without a
        # configured rate they count against the paid plan's standard limit, and
        # nothing is refused.
        self.cometchat_counted = self.cometchat or FixedWindow(COMETCHAT_STANDARD_LIMIT)

    def reset(self) -> None:
        for limiter in self.nexconn.values():
            limiter.reset()
        self.cometchat_counted.reset()


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp, limits: RateLimits, vendors: Vendors, stats: Stats) -> None:
        self.app, self.vendors, self.stats = app, vendors, stats
        self.nexconn, self.cometchat = limits.nexconn, limits.cometchat
        self.cometchat_counted = limits.cometchat_counted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        vendor = vendor_of(scope["path"]) if scope["type"] == "http" else None
        if vendor == NEXCONN and self.nexconn:
            decision = self._nexconn(scope)
        elif vendor == COMETCHAT:
            decision = self._cometchat(scope)
            send = self._with_limit_headers(send, decision)
            if self.cometchat is None:  # counted for the headers only
                await self.app(scope, receive, send)
                return
        else:
            await self.app(scope, receive, send)
            return
        if decision.allowed:
            await self.app(scope, receive, send)
            return
        self.stats.record_rate_limited(vendor)
        await self.vendors.throttled(vendor, decision)(scope, receive, send)

    def _nexconn(self, scope: Scope) -> Decision:
        # The vendor counts per App Key and per endpoint.
        headers = dict(scope["headers"])
        app_key = headers.get(b"app-key") or headers.get(b"rc-app-key") or b""
        path = scope["path"]
        bucket = self.nexconn[NEXCONN_RATE_FACTORS.get(path, 1.0)]
        return bucket.acquire((app_key, path))

    def _cometchat(self, scope: Scope) -> Decision:
        module = self.vendors.cometchat
        rate_class = module.rate_class(scope["method"], scope["path"]) if module else "standard"
        return self.cometchat_counted.acquire(rate_class)

    def _with_limit_headers(self, send: Send, decision: Decision) -> Send:
        module = self.vendors.cometchat
        if module is None:
            return send
        extra: dict[str, str] = module.limit_headers(decision.limit, decision.remaining, decision.reset_epoch)

        async def limited_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                added = [
                    (name.lower().encode(), value.encode())
                    for name, value in extra.items()
                    if name.lower().encode() not in present
                ]
                message = {**message, "headers": [*message.get("headers", []), *added]}
            await send(message)

        return limited_send


class FaultMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        config: EmulatorConfig,
        plan: FaultPlan,
        vendors: Vendors,
        stats: Stats,
    ) -> None:
        self.app, self.config, self.plan = app, config, plan
        self.vendors, self.stats = vendors, stats

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        vendor = vendor_of(scope["path"]) if scope["type"] == "http" else None
        targeted = not self.config.fault_paths or scope.get("path") in self.config.fault_paths
        fault = self.plan.next() if vendor and self.plan.enabled and targeted else None
        if vendor is None or fault is None:
            await self.app(scope, receive, send)
            return
        self.stats.record_fault(fault)
        if fault == "drop":
            await self._drop(scope)
            return
        if fault == "hang":
            await asyncio.sleep(self.config.hang_seconds)
        await self._answer(vendor, fault)(scope, receive, send)

    def _answer(self, vendor: str, fault: Fault) -> Response:
        if fault == "429":
            # As if the window had one second left; the limit shown is the configured
            # one, else the vendor's standard class default.
            limit = self.config.cometchat_rate or COMETCHAT_STANDARD_LIMIT
            decision = Decision(False, limit, 0, int(time.time()) + 1, 1)
            return self.vendors.throttled(vendor, decision)
        status = 503 if fault == "hang" else int(fault)
        return self.vendors.error(vendor, status, f"injected fault: HTTP {status}")

    @staticmethod
    async def _drop(scope: Scope) -> None:
        drop: Callable[[], None] | None = scope.get("extensions", {}).get(DROP_EXTENSION)
        if drop is None:  # not under `server.py` (e.g. an in-process test client)
            raise ConnectionAbortedError("injected fault: connection dropped")
        drop()
        # Let the server see the connection lost before the app returns, so that it
        # does not try to answer on it.
        await asyncio.sleep(0.01)


# ------------------------------------------------------------------------- routes


def _control_routes(
    stats: Stats, plan: FaultPlan, limits: RateLimits, info: dict[str, Any]
) -> list[BaseRoute]:
    async def get_stats(request: Request) -> Response:
        return JSONResponse(stats.snapshot())

    async def get_requests(request: Request) -> Response:
        return JSONResponse({"requests": stats.requests()})

    async def reset(request: Request) -> Response:
        # A fresh start for the traffic state; the store is left as it is.
        stats.reset()
        plan.reset()
        limits.reset()
        return JSONResponse({"reset": True})

    async def get_info(request: Request) -> Response:
        return JSONResponse(info)

    return [
        Route(f"{CONTROL_PREFIX}/stats", get_stats, methods=["GET"]),
        Route(f"{CONTROL_PREFIX}/requests", get_requests, methods=["GET"]),
        Route(f"{CONTROL_PREFIX}/reset", reset, methods=["POST"]),
        Route(f"{CONTROL_PREFIX}/info", get_info, methods=["GET"]),
    ]


def _not_found_handler(vendors: Vendors) -> Callable[[Request, Exception], Any]:
    async def not_found(request: Request, exc: Exception) -> Response:
        vendor = vendor_of(request.url.path)
        if vendor is None:
            return JSONResponse({"error": "no such emulator endpoint"}, status_code=404)
        # Both vendors answer an unknown route and a wrong method alike, with a 404.
        return vendors.error(vendor, 404, f"Not Found: {request.method} {request.url.path}")

    return not_found


def _crash_handler(vendors: Vendors) -> Callable[[Request, Exception], Any]:
    async def crash(request: Request, exc: Exception) -> Response:
        vendor = vendor_of(request.url.path) or NEXCONN
        return vendors.error(vendor, 500, f"Internal server error: {type(exc).__name__}")

    return crash


def build_app(store: Store, config: EmulatorConfig) -> Starlette:
    """The emulator as an ASGI app; `server.py` runs it, tests may drive it in process."""
    cometchat = load_cometchat()
    vendors = Vendors(cometchat)
    stats = Stats()
    plan = FaultPlan(config.fault_rate, config.fault_seed, config.fault_kinds)
    verifier = SignatureVerifier(
        config.app_key,
        config.app_secret,
        tolerance_ms=config.timestamp_tolerance_ms,
        nonce_cache_size=config.nonce_cache_size,
    )
    api_routes: list[BaseRoute] = [
        *nexconn.routes(store, verifier, nexconn.Rules(config.nexconn_ext_keys, config.nexconn_max_users)),
        *(cometchat.routes(store, config) if cometchat is not None else []),
    ]
    limits = RateLimits(config)
    info = {
        "vendors": [NEXCONN, *([COMETCHAT] if cometchat is not None else [])],
        "nexconn_rate": config.nexconn_rate,
        "cometchat_rate": config.cometchat_rate,
        "nexconn_ext_keys": list(config.nexconn_ext_keys),
        "nexconn_max_users": config.nexconn_max_users,
        "fault_rate": config.fault_rate,
        "fault_seed": config.fault_seed,
        "fault_kinds": list(plan.kinds),
        "latency_ms": config.latency_ms,
        "fault_paths": list(config.fault_paths),
    }
    control = _control_routes(stats, plan, limits, info)
    app = Starlette(
        routes=[*api_routes, *control],
        middleware=[
            Middleware(LatencyMiddleware, seconds=config.latency_ms / 1000),
            Middleware(StatsMiddleware, stats=stats, routes=api_routes),
            Middleware(RateLimitMiddleware, limits=limits, vendors=vendors, stats=stats),
            Middleware(FaultMiddleware, config=config, plan=plan, vendors=vendors, stats=stats),
        ],
        exception_handlers={
            404: _not_found_handler(vendors),
            405: _not_found_handler(vendors),
            Exception: _crash_handler(vendors),
        },
    )
    app.router.redirect_slashes = False  # the vendors answer "/v4/user/get/" with a 404
    app.state.vendors = info["vendors"]
    app.state.stats = stats
    app.state.faults = plan
    app.state.verifier = verifier
    return app
