"""The provider protocol: a thin translator between the neutral model and one platform.

A provider reads live state for a `Scope` and carries out changes handed to it by the
applier's one dispatch table (`chatroster.apply.DISPATCH`). It holds no diff logic.
Each write method takes a batch of changes of one action, in plan order, and either
returns (all done) or raises `PartialFailure` naming the changes that failed.
A read reports how far it is through `Provider.read_progress`, one `Tally` per step
(per page, batch call or chunk), so that a long read is not silent.
"""

from __future__ import annotations

import re
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ..changes import Change
from ..errors import ProviderError
from ..model import UID_PATTERN, USER_FIELDS, State, User


@dataclass(frozen=True)
class Capabilities:
    """What a platform can do; validate and plan consult it, never a provider's name."""

    user_fields: frozenset[str] = frozenset(USER_FIELDS)
    deactivate: bool = True
    edit_inactive: bool = True
    """Whether a deactivated user can be changed (fields, owner, relations, tokens)."""
    restore_keeps_data: bool = True
    """Whether a reactivated user gets its data back. Nexconn's restore brings back the
    uid alone, so a reactivation there writes every declared field again."""
    delete: bool = True
    bans: bool = True
    max_ban: timedelta | None = None
    """Longest ban one call can set (Nexconn: 30 days); longer bans are renewed."""
    blocklist: bool = True
    whitelist: bool = True
    friends: bool = True
    """Friends (with alias and ext) and the friend permission."""
    expire_tokens: bool = True
    roles: bool = True
    """Whether roles can be declared, read (one call) and created, updated, deleted."""
    development_user_limit: int | None = None
    """Registered users an app in its development environment may hold (Nexconn: 100,
    "The development environment has a maximum limit of 100 registered users")."""
    refresh_changed: bool = False
    """Whether ``--refresh changed`` can skip reads: the platform keeps a digest of each
    user's applied declaration with its ownership marker (`chatroster.refresh`). The
    local platform reads everything cheaply, so there ``changed`` is the same as full."""
    list_users: bool = True
    """Whether every user can be listed (pruning of users the manifest no longer names)."""
    uid_pattern: re.Pattern[str] = UID_PATTERN
    uid_rule: str = "letters, digits, '_' and '-', at most 64 characters"
    max_length: Mapping[str, int] = field(default_factory=dict)
    """Longest text the platform takes, by field path (``profile.email``; ``tags[]`` for
    each tag, ``profile.ext.*`` for each ext value); checked by validate."""
    max_bytes: Mapping[str, int] = field(default_factory=dict)
    """Most bytes a field takes as compact JSON (CometChat ``metadata``)."""
    max_items: Mapping[str, int] = field(default_factory=dict)
    """Most entries the platform takes in a list or mapping field (``tags``)."""
    alternatives: Mapping[str, str] = field(default_factory=dict)
    """For a missing capability, what to use instead (shown in validation errors)."""


@dataclass(frozen=True)
class Scope:
    """What live state a plan needs, so providers read no more than that."""

    uids: frozenset[str]
    """Users the manifest declares."""
    owner: str
    blocklists: frozenset[str] = frozenset()
    """Users whose blocklist the manifest manages."""
    whitelists: frozenset[str] = frozenset()
    """Users whose whitelist (mode or entries) the manifest manages."""
    friends: frozenset[str] = frozenset()
    """Users whose friends the manifest manages."""
    friend_permissions: frozenset[str] = frozenset()
    """Users whose friend permission the manifest manages."""
    owned: bool = False
    """Also read users owned by ``owner`` that the manifest does not declare (pruning)."""
    bans: bool = False
    """Read bans (the manifest has a ``bans`` section)."""
    extra_uids: frozenset[str] = frozenset()
    """Other uids whose existence matters (ban and block targets not declared as users)."""
    everything: bool = False
    """Read every user the platform can list, with blocklists, whitelists and friends (export)."""
    digests: Mapping[str, str] | None = None
    """``--refresh changed``: the digest of each declared user's declaration. A user whose
    recorded digest equals it is not read per user (see `State.trusted`); ``None``:
    read everything (full refresh)."""


@dataclass(frozen=True)
class DigestEntry:
    """One user's digest to record (`Provider.record_digests`), with its declaration,
    from which a provider that keeps a copy of fields beside the marker (Nexconn's
    name and avatar in the hosted profile) refreshes that copy."""

    uid: str
    digest: str
    """``""``: remove the recorded digest (the user is about to change)."""
    declared: User | None = None


@dataclass(frozen=True)
class Capacity:
    """How many users the app may register, and how many it holds (as last read)."""

    registered: int
    """Registered users the provider can see (a vendor may hold more it cannot list)."""
    limit: int
    environment: str
    """Which kind of app has the limit, for messages (``development``)."""


@dataclass(frozen=True)
class Presence:
    """Whether a user is connected now, as far as the platform says (`chatroster show`)."""

    online: bool | None = None
    """``None``: the platform does not say (the local platform has no connections)."""
    last_active_at: datetime | None = None


ReadProgress = Callable[[str, int, int | None], None]
"""How a read reports as it goes: (what is read, how many so far, how many in all or
``None`` when the platform does not say). Called from any thread."""


class Tally:
    """The count of one step of a read (users, list entries, blocklists), reported
    through a `ReadProgress` as it grows; safe to add to from several threads."""

    def __init__(self, report: ReadProgress | None, what: str, total: int | None = None) -> None:
        self._report = report
        self.what = what
        self.total = total
        """How many there are in all, when known (a vendor may say so on its first page)."""
        self._done = 0
        self._lock = threading.Lock()
        self.add(0)  # the step starts now: its rate is measured from here

    def add(self, count: int = 1) -> None:
        if self._report is None:
            return
        with self._lock:  # reported under the lock, so that counts arrive in order
            self._done += count
            self._report(self.what, self._done, self.total)


class Provider(ABC):
    """Base class of every provider. Write methods are named for the plan's actions."""

    type: str = ""
    capabilities: Capabilities = Capabilities()
    batch_size: int = 500
    """How many changes the applier hands over at once (progress is reported per batch)."""
    concurrent_writes: bool = False
    """Whether write methods may run at once, each on its own thread (one per action):
    a vendor's endpoints each have their own rate limit, so its provider says yes; the
    local platform writes through one SQLite connection and says no."""
    read_progress: ReadProgress | None = None
    """Where `read` reports how far it is (set by the CLI; ``None``: nowhere)."""

    @abstractmethod
    def identity(self) -> dict[str, Any]:
        """Which platform and app this is, for plans: never a secret."""

    @abstractmethod
    def read(self, scope: Scope) -> State:
        """Live state for ``scope``: users (with ``owner``), bans, managed relations."""

    @property
    def notes(self) -> tuple[str, ...]:
        """What the user should know before reading a plan of this platform."""
        return ()

    def tally(self, what: str, total: int | None = None) -> Tally:
        """A new step of a read, counted on `read_progress`."""
        return Tally(self.read_progress, what, total)

    def capacity(self) -> Capacity | None:
        """The app's limit on registered users, with the count the last `read` saw;
        ``None``: no limit (the usual case)."""
        return None

    def presence(self, uids: Sequence[str]) -> dict[str, Presence]:
        """Online status of existing users (`chatroster show`); users left out, or all
        of them, are unknown."""
        return {}

    def list_sizes(self, uids: Sequence[str]) -> dict[str, dict[str, int | None]]:
        """Sizes of the users' lists beyond blocklist and whitelist, by uid and list name
        (``{"alice": {"friends": 3}}``), for `chatroster show`: where a provider that
        manages more lists (friends) reports them. ``None``: cannot be read."""
        return {}

    def request_ids(self, change: Change) -> tuple[str, ...]:
        """The vendor's ids of the write calls made for ``change`` in this apply, in the
        order made, handed over once (`providers.requests`); asked by the apply record
        when the change settles. Default: none (the platform gives no request ids)."""
        return ()

    def mask_key(self) -> bytes | None:
        """A key of the platform's own for masks, where it has no credentials to derive
        one from (the local store); ``None``: derive it from the credentials."""
        return None

    def close(self) -> None:  # noqa: B027 (optional: most providers hold nothing)
        """Release connections and files."""

    def __enter__(self) -> Provider:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # One method per action; the applier's dispatch table names them.
    def create_users(self, changes: Sequence[Change]) -> None:
        raise self._unsupported("create_user")

    def adopt_users(self, changes: Sequence[Change]) -> None:
        raise self._unsupported("adopt_user")

    def update_users(self, changes: Sequence[Change]) -> None:
        raise self._unsupported("update_user")

    def reactivate_users(self, changes: Sequence[Change]) -> None:
        raise self._unsupported("reactivate_user")

    def deactivate_users(self, changes: Sequence[Change]) -> None:
        raise self._unsupported("deactivate_user")

    def delete_users(self, changes: Sequence[Change]) -> None:
        raise self._unsupported("delete_user")

    def ban_users(self, changes: Sequence[Change]) -> None:
        raise self._unsupported("ban_user")

    def unban_users(self, changes: Sequence[Change]) -> None:
        raise self._unsupported("unban_user")

    def add_blocks(self, changes: Sequence[Change]) -> None:
        raise self._unsupported("add_block")

    def remove_blocks(self, changes: Sequence[Change]) -> None:
        raise self._unsupported("remove_block")

    def set_whitelist_modes(self, changes: Sequence[Change]) -> None:
        raise self._unsupported("set_whitelist_mode")

    def add_whitelist(self, changes: Sequence[Change]) -> None:
        raise self._unsupported("add_whitelist")

    def remove_whitelist(self, changes: Sequence[Change]) -> None:
        raise self._unsupported("remove_whitelist")

    def expire_tokens(self, changes: Sequence[Change]) -> None:
        raise self._unsupported("expire_tokens")

    def create_roles(self, changes: Sequence[Change]) -> None:
        raise self._unsupported("create_role")

    def update_roles(self, changes: Sequence[Change]) -> None:
        raise self._unsupported("update_role")

    def delete_roles(self, changes: Sequence[Change]) -> None:
        raise self._unsupported("delete_role")

    def add_friends(self, changes: Sequence[Change]) -> None:
        raise self._unsupported("add_friend")

    def remove_friends(self, changes: Sequence[Change]) -> None:
        raise self._unsupported("remove_friend")

    def update_friends(self, changes: Sequence[Change]) -> None:
        raise self._unsupported("update_friend")

    def set_friend_permissions(self, changes: Sequence[Change]) -> None:
        raise self._unsupported("set_friend_permission")

    def carry_digests(self, digests: Mapping[str, tuple[Change, str]]) -> frozenset[str]:
        """Digests to write with the one change this apply makes to their user, when that
        change is a single write that can carry it (by uid: the change and the digest);
        returns the uids whose digest the provider will write so. Default: none."""
        return frozenset()

    def record_digests(self, entries: Sequence[DigestEntry]) -> dict[str, str]:
        """Write each user's digest next to its ownership marker (``""`` removes it);
        returns why, per uid, a write failed. Only where `Capabilities.refresh_changed`."""
        raise self._unsupported("recording digests")

    def _unsupported(self, action: str) -> ProviderError:
        return ProviderError(f"[{self.type}] {action} is not supported by this platform")
