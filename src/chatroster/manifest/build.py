"""Turning validated manifest data into the model. Only runs once every check passed."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from ..model import DEFAULT_OWNER, Ban, Limit, Manifest, Policy, ProviderConfig, Role, State, User
from .instant import FOREVER, parse_instant
from .sources import Sources

LIMITS = ("max_deactivate", "max_delete", "max_unban", "max_update")


def build(sources: Sources) -> Manifest:
    data = sources.data
    return Manifest(
        desired=State(
            users=users(data.get("users", {})), bans=bans(data.get("bans")), roles=roles(data.get("roles"))
        ),
        provider=provider(data.get("provider", {}), sources),
        owner=data.get("owner", DEFAULT_OWNER),
        policy=policy(data.get("policy", {})),
        sources=sources.files,
        environment=sources.environment,
        entry=sources.entry,
        digest=sources.digest(),
        locate=sources.position,
    )


def users(entries: dict[str, dict[str, Any]]) -> dict[str, User]:
    return {uid: user(uid, entry) for uid, entry in entries.items()}


def user(uid: str, entry: dict[str, Any]) -> User:
    """Absent keys stay ``None`` (unmanaged); empty ones stay empty (none). The one
    exception is ``active``: a declared user is active unless it says ``active: false``,
    so a user put back after a prune, or deactivated by hand, is reactivated."""
    get = entry.get  # each key named once: this runs for every user of the manifest
    tags = get("tags")
    blocklist = get("blocklist")
    whitelist = get("whitelist")
    tokens_valid_after = get("tokens_valid_after")
    return User(
        uid=uid,
        name=get("name"),
        avatar=get("avatar"),
        link=get("link"),
        role=get("role"),
        status_message=get("status_message"),
        metadata=get("metadata"),
        tags=tuple(tags) if tags is not None else None,
        profile=get("profile"),
        active=get("active", True),
        blocklist=frozenset(blocklist) if blocklist is not None else None,
        # `whitelist: [..]` turns whitelist mode on with exactly these; `false` turns it off.
        whitelist=frozenset(whitelist) if isinstance(whitelist, list) else None,
        whitelist_mode=isinstance(whitelist, list) if whitelist is not None else None,
        tokens_valid_after=parse_instant(tokens_valid_after) if tokens_valid_after else None,
        friends=friends(get("friends")),
        friend_permission=get("friend_permission"),
    )


def friends(entries: list[str] | dict[str, Any] | None) -> dict[str, dict[str, Any]] | None:
    """``[bob]`` or ``{bob: {alias: B}}`` as uid -> what is declared about the friend
    (``{}``: only the friendship); ``None`` when the key is absent (unmanaged)."""
    if entries is None:
        return None
    if isinstance(entries, list):
        return {uid: {} for uid in entries}
    return {uid: dict(entry or {}) for uid, entry in entries.items()}


def bans(entries: dict[str, dict[str, Any]] | None) -> dict[str, Ban] | None:
    if entries is None:
        return None  # no bans section: bans are unmanaged
    return {uid: ban(uid, entry["until"]) for uid, entry in entries.items()}


def ban(uid: str, until: str) -> Ban:
    return Ban(uid, None if until == FOREVER else parse_instant(until))


def roles(entries: dict[str, dict[str, Any]] | None) -> dict[str, Role] | None:
    """No ``roles`` section: roles unmanaged. Absent keys stay ``None`` (unmanaged)."""
    if entries is None:
        return None
    return {
        name: Role(name, description=entry.get("description"), metadata=entry.get("metadata"))
        for name, entry in entries.items()
    }


def policy(section: dict[str, Any]) -> Policy:
    defaults = Policy()
    return replace(
        defaults,
        mode=section.get("mode", defaults.mode),
        prune=section.get("prune", defaults.prune),
        protected=frozenset(section.get("protected", ())),
        personal_metadata=frozenset(section.get("personal_metadata", ())),
        **{name: Limit.parse(section[name]) for name in LIMITS if name in section},
    )


def provider(section: dict[str, Any], sources: Sources) -> ProviderConfig:
    # A local store's path is relative to the file that wrote it: an environment may
    # set it over a base that declares the rest of the provider.
    declared_in = sources.origin(("provider", "path"))
    return ProviderConfig(
        type=section.get("type", "local"),
        settings={key: value for key, value in section.items() if key != "type"},
        base_dir=str(Path(declared_in.file).parent),
    )
