"""The CometChat REST API v3 half of `chatroster emulator`: users, blocked users, auth
tokens and roles, served from the SQLite store.

The server framework (`emulator/app.py`) mounts `routes`, and its middleware uses
`rate_class`, `limit_headers` and `rate_limited_response` for the vendor's rate limits.
Paths begin with ``/v3``; the ``/v3.0`` prefix the JS SDK uses is served too.

One module per endpoint group: `users`, `blocks`, `tokens`, `roles`. Shared by them:
`errors` (the vendor's error envelope and codes), `http` (reading and checking
requests, the success envelope, paging) and `routes` (which handler serves each path
and method). The Nexconn package has the same layout.

Where the reference (`reference/cometchat-api.md`) and the vendor's OpenAPI file
(`conformance/cometchat/chat-apis.json`) disagree, the OpenAPI file wins; each such
choice is commented where it is made.
"""

from __future__ import annotations

from .errors import error_response, limit_headers, rate_limited_response
from .routes import TABLE, rate_class, routes

__all__ = [
    "TABLE",
    "error_response",
    "limit_headers",
    "rate_class",
    "rate_limited_response",
    "routes",
]
