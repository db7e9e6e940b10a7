"""Nexconn errors: the vendor's ``{"code": <int>, "errorMessage": <text>}`` body and the
status codes the emulator answers with (its documented server status codes; the
package docstring says why, where the OpenAPI file defines none).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from starlette.responses import JSONResponse, Response

# Status codes of the vendor (the same numbers the legacy API used).
OK = 0
INTERNAL_ERROR = 1000
BAD_PARAMETER = 1002
BAD_SIGNATURE = 1004
RATE_LIMITED = 1008
NOT_FOUND = 404
USER_NOT_FOUND = 24366


class NexconnError(Exception):
    """A refusal, rendered as the vendor's error body."""

    def __init__(self, status: int, code: int, message: str, extra: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = dict(extra or {})

    def response(self) -> Response:
        return error_response(self.status, self.code, self.message, **self.extra)


def error_response(http_status: int, code: int, message: str, **extra: Any) -> Response:
    """The vendor's error body: ``{"code": <int>, "errorMessage": <text>}``."""
    return JSONResponse({"code": code, "errorMessage": message, **extra}, status_code=http_status)


def bad_parameter(message: str) -> NexconnError:
    return NexconnError(400, BAD_PARAMETER, message)


def user_not_found(uids: Sequence[str]) -> NexconnError:
    names = ", ".join(uids)
    return NexconnError(404, USER_NOT_FOUND, f"The user does not exist: {names}")
