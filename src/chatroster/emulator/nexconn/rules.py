"""What a Nexconn app is configured with in the vendor's console, as the emulator sees
it: the ``userExtProfile`` keys declared for hosted profiles, and the registered-user
limit of a development app.

The vendor refuses an ext key that was not declared in the console first, and a
development app registers at most 100 users ("The development environment has a
maximum limit of 100 registered users"); the emulator does the same with the keys and
the limit it is started with (``--nexconn-ext-keys``, ``--nexconn-max-users``).
"""

from __future__ import annotations

from dataclasses import dataclass

#: The keys a fresh emulator has declared: chatroster's ownership marker, token
#: watermark and digest of the applied declaration, and the ext fields the shipped
#: examples use.
DEFAULT_EXT_KEYS: tuple[str, ...] = (
    "ext_chatrosterOwner",
    "ext_chatrosterTokens",
    "ext_chatrosterDigest",
    "ext_dept",
    "ext_status",
)

ANY_KEY = "*"
"""``--nexconn-ext-keys '*'``: every well-formed key counts as declared."""

USER_LIMIT_REACHED = 1015
"""The code the emulator answers a registration over ``--nexconn-max-users`` with (HTTP
403). The reference names no code for it; chatroster refuses such plans before any call
and does not branch on it."""


@dataclass(frozen=True)
class Rules:
    ext_keys: tuple[str, ...] = DEFAULT_EXT_KEYS
    max_users: int | None = None
    """Registered users the app may hold (soft-deleted ones count); None: no limit."""

    def declares(self, key: str) -> bool:
        return ANY_KEY in self.ext_keys or key in self.ext_keys
