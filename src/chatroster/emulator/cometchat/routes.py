"""CometChat v3 routing: which handler serves each path and method, under ``/v3`` and
``/v3.0`` (the prefix the JS SDK uses), with the API key checked first.

Every request under those prefixes gets the vendor's envelope: unknown paths and
methods answer ERR_API_NOT_FOUND rather than the framework's plain 404/405. The rate
class of a request (`rate_class`) is read from its path here too.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Mapping

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ...store import Store
from ..config import EmulatorConfig
from . import blocks, roles, tokens, users
from .errors import ApiError, api_not_found
from .http import Call, Handler

PREFIXES = ("/v3", "/v3.0")
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]

#: Each path and what each method does there; a method not listed is ERR_API_NOT_FOUND.
#: PUT /users/{uid}/auth_tokens/{authToken} (token platform info) is not served: the store
#: keeps no per-token details.
TABLE: dict[str, dict[str, Handler]] = {
    "/users": {
        "POST": users.create_user,
        "GET": users.list_users,
        "PUT": users.reactivate_users,
        "DELETE": users.deactivate_users,
    },
    "/users/{uid}": {
        "GET": users.get_user,
        "PUT": users.update_user,
        "DELETE": users.delete_user,
    },
    "/users/{uid}/blockedusers": {
        "POST": blocks.block_users,
        "DELETE": blocks.unblock_users,
        "GET": blocks.list_blocked_users,
    },
    "/users/{uid}/auth_tokens": {
        "POST": tokens.create_token,
        "GET": tokens.list_tokens,
        "DELETE": tokens.flush_tokens,
    },
    "/users/{uid}/auth_tokens/{authToken}": {
        "GET": tokens.get_token,
        "DELETE": tokens.delete_token,
    },
    "/roles": {"POST": roles.create_role, "GET": roles.list_roles},
    "/roles/{role}": {
        "GET": roles.get_role,
        "PUT": roles.update_role,
        "DELETE": roles.delete_role,
    },
}


# ------------------------------------------------------------------------ routes


def routes(store: Store, config: EmulatorConfig) -> list[BaseRoute]:
    """The CometChat v3 API on ``store``, under ``/v3`` and ``/v3.0``."""
    roles.ensure_default_role(store)
    # Flat routes rather than a Mount per prefix: a Mount rewrites the request scope's
    # root_path, which misleads middleware that matches routes again after the call.
    endpoints = {path: _endpoint(store, config, handlers) for path, handlers in TABLE.items()}
    served: list[BaseRoute] = []
    for prefix in PREFIXES:
        served += [Route(prefix + path, endpoint, methods=METHODS) for path, endpoint in endpoints.items()]
        served.append(Route(prefix + "/{rest:path}", _not_found, methods=METHODS))
    return served


def rate_class(method: str, path: str) -> str:
    """``core`` for the vendor's core operations (create user, delete user, create auth
    token), ``standard`` for everything else."""
    parts = _api_path(path).strip("/").split("/")
    method = method.upper()
    core = (
        (method == "POST" and parts == ["users"])
        or (method == "DELETE" and len(parts) == 2 and parts[0] == "users")
        or (method == "POST" and len(parts) == 3 and parts[::2] == ["users", "auth_tokens"])
    )
    return "core" if core else "standard"


# ------------------------------------------------------------------- internals


def _api_path(path: str) -> str:
    """The path after the version prefix (``/v3.0/users`` -> ``/users``)."""
    for prefix in sorted(PREFIXES, key=len, reverse=True):
        if path == prefix or path.startswith(prefix + "/"):
            return path[len(prefix) :]
    return path


def _authenticate(config: EmulatorConfig, headers: Headers) -> None:
    key = headers.get("apikey")
    if not key:
        raise ApiError(401, "AUTH_ERR_EMPTY_APIKEY", "The apikey header is missing or empty.")
    if not hmac.compare_digest(key.encode(), config.api_key.encode()):
        raise ApiError(401, "AUTH_ERR_APIKEY_NOT_FOUND", "The API key is not valid for this app.")
    app_id = headers.get("appid")
    if app_id is not None and app_id != config.app_id:
        raise ApiError(401, "AUTH_ERR_INVALID_APPID", f"The app id {app_id} is not valid.")


def _endpoint(
    store: Store, config: EmulatorConfig, handlers: Mapping[str, Handler]
) -> Callable[[Request], Awaitable[Response]]:
    """One path's endpoint: dispatch on method, authenticate, run the handler off the
    event loop (SQLite blocks), and turn `ApiError` into the vendor's envelope."""

    async def endpoint(request: Request) -> Response:
        handler = handlers.get(request.method)
        try:
            if handler is None:
                raise api_not_found()
            _authenticate(config, request.headers)
            call = Call(
                params=request.path_params,
                query=request.query_params,
                headers=request.headers,
                body=await request.body(),
            )
            body = await run_in_threadpool(handler, store, call)
        except ApiError as exc:
            return exc.response()
        return JSONResponse(body)

    return endpoint


async def _not_found(request: Request) -> Response:
    return api_not_found().response()
