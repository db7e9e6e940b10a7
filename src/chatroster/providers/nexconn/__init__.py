"""The Nexconn provider: Chat Server API v4 plus the legacy user-whitelist endpoints.

A thin translator, in the same four modules as every vendor:

    api.py       the wire format: endpoints, signing, answers and error codes, the
                 translation of users, hosted profiles, bans and times (no I/O)
    client.py    settings, signed HTTP, one method per read endpoint, and the reads
                 that take many calls, run concurrently
    batches.py   running a batch of changes as calls, and settling failures per change
    provider.py  `NexconnProvider`: what to read for a `Scope`, and which calls carry
                 out each action

`chatroster.providers.open_provider` imports this package only when a manifest names
Nexconn, so that `validate` loads no provider.
"""

from __future__ import annotations

from .api import MARKER_KEYS, OWNER_KEY, TOKENS_KEY
from .client import NexconnClient, Settings
from .provider import NexconnProvider, open_nexconn

__all__ = [
    "MARKER_KEYS",
    "OWNER_KEY",
    "TOKENS_KEY",
    "NexconnClient",
    "NexconnProvider",
    "Settings",
    "open_nexconn",
]
