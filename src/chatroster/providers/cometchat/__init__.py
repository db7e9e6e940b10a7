"""The CometChat provider: REST API v3.

A thin translator, in the same four modules as every vendor:

    api.py       the wire format: the user object and its translation, the ownership
                 marker in metadata, the error envelope, per-call limits (no I/O)
    client.py    settings, HTTP with the REST API key, the call wrapper, paging, and
                 one method per read endpoint
    batches.py   running a batch of changes as calls, and settling failures per change
    roles.py     the app's roles: read in one call, created, updated and deleted
    provider.py  `CometChatProvider`: what to read for a `Scope`, and which calls carry
                 out each action

`chatroster.providers.open_provider` imports this package only when a manifest names
CometChat, so that `validate` loads no provider.
"""

from __future__ import annotations

from .api import MARKER_KEY
from .client import CometChatClient, HttpOptions, Settings
from .provider import CometChatProvider, open_cometchat

__all__ = [
    "MARKER_KEY",
    "CometChatClient",
    "CometChatProvider",
    "HttpOptions",
    "Settings",
    "open_cometchat",
]
