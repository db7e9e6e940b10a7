"""Providers and their capability table.

`CAPABILITIES` is static so that `validate` can check a manifest offline, before any
provider is built or any credential is needed.
"""

from __future__ import annotations

import re
from datetime import timedelta

from ..errors import PartialFailure
from ..model import ProviderConfig
from .base import Capabilities, Capacity, DigestEntry, Provider, ReadProgress, Scope

LOCAL = Capabilities()

NEXCONN = Capabilities(
    user_fields=frozenset({"name", "avatar", "tags", "profile"}),
    delete=False,
    edit_inactive=False,
    restore_keeps_data=False,
    refresh_changed=True,
    development_user_limit=100,
    max_ban=timedelta(days=30),
    list_users=False,
    roles=False,
    uid_pattern=re.compile(r"^[A-Za-z0-9]{1,64}$"),
    max_length={
        "name": 64,
        "avatar": 1024,
        "tags[]": 40,
        "profile.email": 128,
        "profile.birthday": 32,
        "profile.location": 32,
        "profile.unique_id": 32,
        "profile.ext.*": 256,
        "friends.*.alias": 64,
        "friends.*.ext.*": 256,
    },
    # 20 ext fields a user, three of which hold chatroster's ownership marker, token
    # watermark and digest of the applied declaration.
    max_items={"tags": 20, "profile.ext": 17, "friends": 3000, "friends.*.ext": 10},
    uid_rule="letters and digits only, at most 64 characters",
    alternatives={
        "link": "keep it in profile.ext (an ext_* field)",
        "role": "use profile.role (an integer 0-100) or tags",
        "status_message": "keep it in profile.ext (an ext_* field)",
        "metadata": "use profile (hosted profile) and profile.ext fields",
        "delete": "use prune: deactivate (soft-delete); Nexconn has no permanent delete",
        "roles": "Nexconn has no roles; remove the roles section and use profile.role "
        "(an integer 0-100) or tags",
    },
)

COMETCHAT = Capabilities(
    user_fields=frozenset({"name", "avatar", "link", "role", "status_message", "metadata", "tags"}),
    bans=False,
    whitelist=False,
    friends=False,
    edit_inactive=False,
    refresh_changed=True,
    uid_pattern=re.compile(r"^[a-z0-9_-]{1,100}$"),
    max_length={"name": 100, "avatar": 3000, "link": 3000, "tags[]": 100},
    max_items={"tags": 25},
    # 5 KB (the reference's larger figure), less room for chatroster's marker
    # (``@chatroster``: owner and token watermark) kept in the same metadata.
    max_bytes={"metadata": 5 * 1024 - 256},
    uid_rule="lower-case letters, digits, '_' and '-', at most 100 characters",
    alternatives={
        "profile": "use metadata (for example metadata: {'@private': {email: ...}})",
        "bans": "use active: false to deactivate the user",
        "whitelist": "CometChat has no user whitelist; use a role with "
        "sendMessagesTo: friendsOnly and the friends API",
        "friends": "chatroster manages friends on local and Nexconn only; on CometChat leave "
        "friends out of the manifest (users add friends in the app), or use blocklist",
        "friend_permission": "chatroster manages the friend permission on local and Nexconn "
        "only; on CometChat leave it out of the manifest",
    },
)

CAPABILITIES: dict[str, Capabilities] = {
    "local": LOCAL,
    "nexconn": NEXCONN,
    "cometchat": COMETCHAT,
}

__all__ = [
    "CAPABILITIES",
    "Capabilities",
    "Capacity",
    "DigestEntry",
    "PartialFailure",
    "Provider",
    "ReadProgress",
    "Scope",
    "open_provider",
]


def open_provider(
    config: ProviderConfig,
    *,
    concurrency: int | None = None,
    writable: bool = False,
    lock_timeout: timedelta = timedelta(0),
) -> Provider:
    """Build the provider a manifest names. Modules load lazily: `validate` needs none.

    Read-only unless ``writable`` (apply): validate, plan, drift and export write
    nothing anywhere. ``writable`` and ``lock_timeout`` (how long apply waits for
    another apply to finish) concern the local store, the one platform chatroster can
    lock; vendors' applies are serialised by the CI jobs that run them.
    """
    if config.type == "local":
        from .local import open_local

        return open_local(config, writable=writable, lock_timeout=lock_timeout)
    if config.type == "nexconn":
        from .nexconn import open_nexconn

        return open_nexconn(config, concurrency=concurrency)
    if config.type == "cometchat":
        from .cometchat import open_cometchat

        return open_cometchat(config, concurrency=concurrency)
    raise ValueError(f"unknown provider type {config.type!r}")
