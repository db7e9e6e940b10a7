"""The provider-neutral model: one `State` type for both `desired` and `live`.

A field set to ``None`` means "not managed" on the desired side (the manifest left
the key out) and "not known" on the live side (the provider did not read it, or
cannot). An empty value (``()``, ``{}``) means "none". The planner relies on that
difference: absent means unmanaged, empty means none.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Literal

UID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
"""The uid syntax every provider accepts: letters, digits, '_' and '-'."""

DEFAULT_OWNER = "chatroster"

DEFAULT_ROLE = "default"
"""The built-in role every user holds unless given another; never created, changed or
deleted by chatroster, and not declared in a manifest."""

#: Profile keys with a meaning on every platform that hosts profiles. Extra
#: vendor fields live under ``ext`` (Nexconn: ``ext_*`` keys, string values).
PROFILE_KEYS = ("email", "birthday", "gender", "location", "level", "role", "unique_id", "ext")

#: User fields that hold scalars or plain JSON data, in the order they are shown.
USER_FIELDS = (
    "name",
    "avatar",
    "link",
    "role",
    "status_message",
    "metadata",
    "tags",
    "profile",
)

#: A user's friend permission: who may add it as a friend by request (``anyone``,
#: ``approval`` by the user, ``nobody``). chatroster itself adds friends directly.
FRIEND_PERMISSIONS = ("anyone", "approval", "nobody")

PruneMode = Literal["none", "deactivate", "delete"]
Mode = Literal["sync", "seed"]


def utc(value: datetime) -> datetime:
    """The same instant in UTC, to the second (every platform stores seconds at best)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).replace(microsecond=0)


_SCALARS = frozenset({str, int, float, bool, type(None)})
"""Exact types that are immutable leaves of JSON-like data. Tested by ``type(x) in``
before any ``isinstance(x, Mapping)``: that abstract check is slow, and freeze and
thaw run on every field of 100k users."""


def freeze(value: Any) -> Any:
    """A read-only copy of JSON-like data, so that states and changes stay immutable."""
    if type(value) in _SCALARS:
        return value
    if type(value) is dict or type(value) is MappingProxyType or isinstance(value, Mapping):
        return MappingProxyType(
            {key: item if type(item) in _SCALARS else freeze(item) for key, item in value.items()}
        )
    if isinstance(value, (list, tuple)):
        return tuple(item if type(item) in _SCALARS else freeze(item) for item in value)
    return value


def thaw(value: Any) -> Any:
    """Plain ``dict``/``list`` data again, for JSON and YAML output."""
    if type(value) in _SCALARS:
        return value
    if type(value) is MappingProxyType or type(value) is dict or isinstance(value, Mapping):
        return {key: item if type(item) in _SCALARS else thaw(item) for key, item in value.items()}
    if isinstance(value, tuple):
        return [item if type(item) in _SCALARS else thaw(item) for item in value]
    return value


@dataclass(frozen=True, slots=True)
class User:
    """One user, desired or live. ``None`` fields are unmanaged (desired) or unknown (live)."""

    uid: str
    name: str | None = None
    avatar: str | None = None
    link: str | None = None
    role: str | None = None
    status_message: str | None = None
    metadata: Mapping[str, Any] | None = None
    tags: tuple[str, ...] | None = None
    """Kept sorted: tag order carries no meaning on any platform."""
    profile: Mapping[str, Any] | None = None
    active: bool | None = None
    """Desired: ``False`` deactivated, anything else active (a declared user is active
    unless it says ``active: false``). Live: ``None`` when not known."""
    blocklist: frozenset[str] | None = None
    """Exactly the uids this user blocks."""
    whitelist: frozenset[str] | None = None
    """Whitelist entries; only meaningful while ``whitelist_mode`` is on."""
    whitelist_mode: bool | None = None
    tokens_valid_after: datetime | None = None
    friends: Mapping[str, Mapping[str, Any]] | None = None
    """Exactly this user's friends, each with what this user keeps about the friend
    (a list of uids is taken too: friends only). Desired: ``{}`` manages only the
    friendship; ``alias`` and ``ext``, when given, manage those too (``""`` and
    ``{}``: none). Live: every entry has ``alias`` (``""``: none) and ``ext`` (``{}``:
    none). Friendship is mutual: see `chatroster.friendship`."""
    friend_permission: str | None = None
    """One of `FRIEND_PERMISSIONS`."""
    owner: str | None = None
    """Live only: the ownership marker kept on the platform (``None``: unowned)."""
    digest: str | None = None
    """Live only: the digest of the declaration last applied to this user, recorded
    with the ownership marker (`chatroster.refresh`; ``None``: none recorded)."""

    def __post_init__(self) -> None:
        # Normalise once here so that equality means "same meaning" everywhere. This runs
        # for every user declared and read (100k each for a large plan), hence one plain
        # test per field rather than a loop over field names.
        set_field = object.__setattr__
        if self.tags is not None:
            set_field(self, "tags", tuple(sorted(set(self.tags))))
        if self.metadata is not None and type(self.metadata) is not MappingProxyType:
            set_field(self, "metadata", freeze(self.metadata))
        if self.profile is not None and type(self.profile) is not MappingProxyType:
            set_field(self, "profile", freeze(self.profile))
        if self.blocklist is not None and not isinstance(self.blocklist, frozenset):
            set_field(self, "blocklist", frozenset(self.blocklist))
        if self.whitelist is not None and not isinstance(self.whitelist, frozenset):
            set_field(self, "whitelist", frozenset(self.whitelist))
        if self.tokens_valid_after is not None:
            set_field(self, "tokens_valid_after", utc(self.tokens_valid_after))
        if self.friends is not None and type(self.friends) is not MappingProxyType:
            friends = self.friends if isinstance(self.friends, Mapping) else dict.fromkeys(self.friends, {})
            set_field(self, "friends", freeze({uid: entry or {} for uid, entry in friends.items()}))

    def fields(self) -> dict[str, Any]:
        """The user's profile fields (``USER_FIELDS``) as a plain mapping, ``None`` included."""
        return {name: getattr(self, name) for name in USER_FIELDS}

    def evolve(self, **changes: Any) -> User:
        return replace(self, **changes)


@dataclass(frozen=True)
class Ban:
    """An app-level ban of ``uid`` until ``until`` (``None``: forever)."""

    uid: str
    until: datetime | None = None

    def __post_init__(self) -> None:
        if self.until is not None:
            object.__setattr__(self, "until", utc(self.until))


@dataclass(frozen=True)
class Role:
    """A role users can hold, desired or live. ``None`` fields are unmanaged (desired)
    or unset (live); ``metadata`` never holds the ownership marker."""

    name: str
    description: str | None = None
    metadata: Mapping[str, Any] | None = None
    owner: str | None = None
    """Live only: the ownership marker kept on the platform (``None``: unowned)."""

    def __post_init__(self) -> None:
        if self.metadata is not None and type(self.metadata) is not MappingProxyType:
            object.__setattr__(self, "metadata", freeze(self.metadata))


@dataclass(frozen=True)
class State:
    """Users, bans and roles of one app. The same type holds ``desired`` and ``live``.

    ``bans`` is ``None`` on the desired side when the manifest has no ``bans`` section
    (bans unmanaged); on the live side it holds every ban the provider read. ``roles``
    likewise: ``None`` desired means no ``roles`` section (roles unmanaged), ``None``
    live means the platform has no roles to read. The built-in ``default`` role is in
    neither.
    """

    users: Mapping[str, User] = field(default_factory=dict)
    bans: Mapping[str, Ban] | None = None
    roles: Mapping[str, Role] | None = None
    trusted: Mapping[str, frozenset[str]] = field(default_factory=dict)
    """Live only (``--refresh changed``): declared users taken as in sync without their
    per-user reads, each with the fields the provider did not read for it, which
    `chatroster.refresh.trusting` takes from the declaration."""


@dataclass(frozen=True)
class Limit:
    """A safety limit: an absolute count, or a percentage of the users this owner owns."""

    count: int | None = None
    percent: float | None = None

    def allows(self, n: int, owned: int) -> bool:
        return n <= self.threshold(owned)

    def threshold(self, owned: int) -> int:
        """How many are allowed. A non-zero percentage always allows at least one, so
        that one change in a small app does not need --force, while emptying it does."""
        if self.percent is not None:
            allowed = int(owned * self.percent / 100)
            return max(1, allowed) if self.percent > 0 else 0
        return self.count if self.count is not None else 0

    def __str__(self) -> str:
        return f"{self.percent:g}%" if self.percent is not None else str(self.count)

    @classmethod
    def parse(cls, value: int | str) -> Limit:
        """``10`` or ``"25%"``; the schema has already checked the shape."""
        if isinstance(value, str) and value.endswith("%"):
            return cls(percent=float(value[:-1]))
        return cls(count=int(value))


@dataclass(frozen=True)
class Policy:
    mode: Mode = "sync"
    prune: PruneMode = "none"
    max_deactivate: Limit = Limit(percent=25)
    max_delete: Limit = Limit(count=0)
    max_unban: Limit = Limit(percent=25)
    max_update: Limit = Limit(percent=50)
    protected: frozenset[str] = frozenset()
    personal_metadata: frozenset[str] = frozenset()
    """Metadata keys whose values are masked in printed output."""


@dataclass(frozen=True)
class ProviderConfig:
    """The manifest's ``provider`` section after ``${VAR}`` substitution.

    ``settings`` holds the type-specific keys (path, url, region, app_key, ...);
    ``secrets`` names the keys whose values must never be printed.
    """

    type: str = "local"
    settings: Mapping[str, Any] = field(default_factory=dict)
    base_dir: str = "."
    """The directory of the manifest file that declared the provider (relative paths)."""

    SECRET_KEYS = frozenset({"app_secret", "api_key", "app_key"})

    def public(self) -> dict[str, Any]:
        """The settings that are safe to print or record in a plan (no secrets)."""
        return {k: v for k, v in self.settings.items() if k not in self.SECRET_KEYS}


@dataclass(frozen=True)
class Manifest:
    """A validated manifest: the desired state plus how to reach and manage the platform."""

    desired: State
    provider: ProviderConfig = ProviderConfig()
    owner: str = DEFAULT_OWNER
    policy: Policy = Policy()
    sources: tuple[str, ...] = ()
    """The files it was read from, in order."""
    environment: str | None = None
    """The environment's name, when the manifest is an environment file."""
    entry: tuple[str, ...] = ()
    """What to read to get the manifest again, when that is not ``sources``: an
    environment file, which names its other layers itself."""
    digest: str = ""
    """sha256 of the sources' bytes, so a saved plan can tell the manifest changed."""
    locate: Callable[[tuple[str | int, ...]], tuple[str, int, int]] = field(
        default=lambda path: ("", 0, 0), compare=False
    )
    """Where a path of the document (``("users", "alice", "role")``) was written, as
    (file, line, column): for problems only the live state reveals (an unknown role)."""
