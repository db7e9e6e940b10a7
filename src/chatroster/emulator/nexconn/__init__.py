"""The Nexconn half of `chatroster emulator`: Chat Server API v4 (user endpoints) and
the legacy user-whitelist endpoints, served from the SQLite store.

The server framework (`emulator/app.py`) mounts `routes` and words its own answers
(404s, faults, 429s) with `error_response` and the vendor's codes. Every endpoint is a
signed POST. A handler gets the store and the checked body and returns what the
success carries; it raises `NexconnError` for anything the vendor refuses. The store
holds the meaning: soft-delete is deactivation, blocklists are the ``blocks``
relation, tags and the hosted profile are user fields.

One module per endpoint group: `users`, `tokens`, `bans`, `blocks`, `tags`,
`profiles`, `friends`, and `whitelist` (legacy). Shared by them: `errors` (the vendor's error
body and codes), `http` (reading and checking requests, the success envelopes, paging)
and `routes` (which handler serves each path). The CometChat package has the same
layout.

Where the reference (``reference/nexconn-api.md``) and the vendor's OpenAPI file
(``conformance/nexconn/openapi.yaml``) disagree, this package follows the OpenAPI file:

- ``blocklist/get`` returns its next cursor as ``pageToken`` (the reference also
  mentions a docs example naming it ``next``; the OpenAPI says "not ``next``").
- Online status is served at ``/v4/user/connection-status/get`` only (older docs:
  ``/v4/user/online-status/get``).
- A ``profile/set`` rejection of one profile key is answered with HTTP 200 and a body
  ``{"code": 1002, "errorMessage": ..., "profileKey": <key>}``: the OpenAPI puts
  ``profileKey`` ("the failed profile key when the update fails") in the 200 response.
- The OpenAPI defines no error codes at all. Errors use the vendor's documented
  server status codes (1002 parameter, 1004 signature, 1008 rate limit, 1000
  internal, 404 unknown address) and, for a user that does not exist or is
  soft-deleted, 24366 "The user does not exist." from the vendor's published error
  table, with HTTP 404.
- Times the OpenAPI types as plain strings (``createdAt``, ``banExpiresAt``) use the
  vendor's ``YYYY-MM-DD HH:MM:SS`` format (in UTC), the format its spec gives for the
  other ban and mute expiry times.
"""

from __future__ import annotations

# Imported for their effect: each group registers its v4 endpoints in `ENDPOINTS`.
from . import bans, blocks, friends, profiles, tags, tokens, users  # noqa: F401
from .errors import (
    BAD_PARAMETER,
    BAD_SIGNATURE,
    INTERNAL_ERROR,
    NOT_FOUND,
    RATE_LIMITED,
    USER_NOT_FOUND,
    NexconnError,
    error_response,
)
from .routes import ENDPOINTS, routes
from .rules import DEFAULT_EXT_KEYS, USER_LIMIT_REACHED, Rules

__all__ = [
    "BAD_PARAMETER",
    "BAD_SIGNATURE",
    "DEFAULT_EXT_KEYS",
    "ENDPOINTS",
    "INTERNAL_ERROR",
    "NOT_FOUND",
    "RATE_LIMITED",
    "USER_LIMIT_REACHED",
    "Rules",
    "USER_NOT_FOUND",
    "NexconnError",
    "error_response",
    "routes",
]
