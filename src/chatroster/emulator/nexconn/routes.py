"""Nexconn routing: which handler serves each path, with the signature checked first.

Every endpoint is a signed POST. The v4 endpoints take a JSON body and are registered
in `ENDPOINTS` by the `endpoint` decorator in their group's module; the legacy
whitelist endpoints take a form body, ``Timestamp`` in seconds, and are listed in
`LEGACY_HANDLERS`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ...store import Store
from ..signing import SignatureVerifier
from . import whitelist
from .errors import BAD_SIGNATURE, NexconnError, error_response
from .http import (
    Field,
    FormHandler,
    Handler,
    Result,
    RuledHandler,
    legacy_success,
    parse_form,
    parse_json,
    success,
    validate,
)
from .rules import Rules


@dataclass(frozen=True)
class Endpoint:
    path: str
    fields: Mapping[str, Field]
    handler: Handler | None = field(compare=False, default=None)
    ruled: RuledHandler | None = field(compare=False, default=None)
    """Set instead of ``handler`` for endpoints that obey the app's `Rules`."""

    def serve(self, store: Store, body: dict[str, Any], rules: Rules) -> Result:
        if self.ruled is not None:
            return self.ruled(store, body, rules)
        assert self.handler is not None
        return self.handler(store, body)


ENDPOINTS: dict[str, Endpoint] = {}
"""Every v4 endpoint the emulator serves, by path (tests compare them to the OpenAPI)."""


def endpoint(path: str, **fields: Field) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        ENDPOINTS[path] = Endpoint(path, fields, handler)
        return handler

    return register


def ruled_endpoint(path: str, **fields: Field) -> Callable[[RuledHandler], RuledHandler]:
    """`endpoint` for a handler that also takes the app's `Rules`."""

    def register(handler: RuledHandler) -> RuledHandler:
        ENDPOINTS[path] = Endpoint(path, fields, ruled=handler)
        return handler

    return register


LEGACY_HANDLERS: dict[str, FormHandler] = {
    "/user/whitesetting/set.json": whitelist.set_white_setting,
    "/user/whitesetting/query.json": whitelist.query_white_setting,
    "/user/whitelist/add.json": whitelist.add_whitelist,
    "/user/whitelist/remove.json": whitelist.remove_whitelist,
    "/user/whitelist/query.json": whitelist.query_whitelist,
}


def routes(store: Store, verifier: SignatureVerifier, rules: Rules | None = None) -> list[BaseRoute]:
    """The v4 routes, signed JSON POSTs, then the legacy whitelist routes, signed form
    POSTs answered in the legacy envelope. ``rules``: what the app declares in the
    console (the defaults unless given)."""
    rules = rules or Rules()
    v4 = [_route(store, verifier, spec, rules) for spec in ENDPOINTS.values()]
    legacy = [_legacy_route(store, verifier, path, handler) for path, handler in LEGACY_HANDLERS.items()]
    return [*v4, *legacy]


def _route(store: Store, verifier: SignatureVerifier, spec: Endpoint, rules: Rules) -> Route:
    async def handle(request: Request) -> Response:
        refused = verifier.verify(request.headers, "ms")
        if refused is not None:
            message = f"Signature verification failed: {refused.reason}"
            return error_response(401, BAD_SIGNATURE, message)
        try:
            body = validate(spec.fields, parse_json(await request.body()))
            return success(spec.serve(store, body, rules))
        except NexconnError as error:
            return error.response()

    return Route(spec.path, handle, methods=["POST"], name=f"nexconn:{spec.path}")


def _legacy_route(store: Store, verifier: SignatureVerifier, path: str, handler: FormHandler) -> Route:
    async def handle(request: Request) -> Response:
        refused = verifier.verify(request.headers, "s")
        if refused is not None:
            message = f"Signature verification failed: {refused.reason}"
            return error_response(401, BAD_SIGNATURE, message)
        try:
            payload = handler(store, parse_form(await request.body()))
        except NexconnError as error:
            return error.response()
        return legacy_success(payload)

    return Route(path, handle, methods=["POST"], name=f"nexconn-legacy:{path}")
