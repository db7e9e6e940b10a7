"""CometChat v3 errors: the vendor's ``{"error": {...}}`` envelope, the codes the
emulator answers with, and the answer to a request over the rate limit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.responses import JSONResponse, Response


class ApiError(Exception):
    """A failure the vendor reports as ``{"error": {...}}`` with an HTTP status."""

    def __init__(
        self, status: int, code: str, message: str, details: Mapping[str, list[str]] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = dict(details) if details else None

    def response(self) -> Response:
        return error_response(self.status, self.code, self.message, self.details)


def error_response(status: int, code: str, message: str, details: dict[str, Any] | None = None) -> Response:
    """The vendor's error envelope; ``details`` (field -> messages) only when given."""
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = details
    return JSONResponse({"error": error}, status_code=status)


def bad_request(message: str, details: Mapping[str, list[str]] | None = None) -> ApiError:
    return ApiError(400, "ERR_BAD_REQUEST", message, details)


def uid_not_found(uid: str) -> ApiError:
    return ApiError(404, "ERR_UID_NOT_FOUND", f"The UID {uid} does not exist.")


def api_not_found() -> ApiError:
    return ApiError(404, "ERR_API_NOT_FOUND", "The requested API does not exist.")


# ------------------------------------------------------------------- rate limits


def limit_headers(limit: int, remaining: int, reset_epoch: int) -> dict[str, str]:
    """Both spellings the vendor's docs use, so clients written against either work."""
    values = {"Limit": limit, "Remaining": remaining, "Reset": reset_epoch}
    headers = {f"X-RateLimit-{name}": str(value) for name, value in values.items()}
    headers["X-Rate-Limit"] = str(limit)
    headers["X-Rate-Limit-Remaining"] = str(remaining)
    headers["X-Rate-Limit-Reset"] = str(reset_epoch)
    return headers


def rate_limited_response(limit: int, reset_epoch: int, retry_after: int) -> Response:
    response = error_response(
        429,
        "ERR_TOO_MANY_REQUESTS",
        f"Rate limit of {limit} requests per minute exceeded; retry after {retry_after} s.",
    )
    response.headers.update(limit_headers(limit, 0, reset_epoch))
    response.headers["Retry-After"] = str(retry_after)
    return response
