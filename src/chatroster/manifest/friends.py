"""Semantic checks of ``friends``: what the schema cannot say.

Friendship is mutual (see `chatroster.friendship`), so the two sides of one must
agree: a user that lists another whose own ``friends`` leave it out is refused here,
naming both places, because no apply could make both true. The provider's limits
(Nexconn: 3000 friends, alias at most 64 characters, at most 10 ext fields of at most
256 characters) are checked per entry; the friend count is checked with the other list
limits in `checks`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from ..providers import Capabilities
from .finding import DocPath, Finding


def entries(user: Mapping[str, Any]) -> dict[str, tuple[str | int, Any]]:
    """A user's declared friends: uid -> (its key or index in the document, its entry)."""
    declared = user.get("friends")
    if isinstance(declared, list):
        return {uid: (index, {}) for index, uid in enumerate(declared) if isinstance(uid, str)}
    if isinstance(declared, dict):
        return {uid: (uid, entry if isinstance(entry, dict) else {}) for uid, entry in declared.items()}
    return {}


def check(users: Mapping[str, Mapping[str, Any]]) -> Iterator[Finding]:
    """Self-friendship and one-sided declarations, on any provider."""
    declared = {uid: entries(user) for uid, user in users.items() if "friends" in user}
    for uid, friends in declared.items():
        for target, (at, _) in friends.items():
            path: DocPath = ("users", uid, "friends", at)
            if target == uid:
                yield Finding(path, f"'{uid}' cannot be its own friend", f"remove '{uid}' from its friends")
            elif target in declared and uid not in declared[target]:
                yield Finding(
                    path,
                    f"'{uid}' lists '{target}' as a friend, but the friends of '{target}' "
                    f"(users.{target}.friends) leave '{uid}' out; friendship is mutual, so both "
                    "cannot hold",
                    f"add '{uid}' to the friends of '{target}', or remove '{target}' from these",
                )


def targets(user: Mapping[str, Any]) -> Iterator[tuple[DocPath, str]]:
    """Each declared friend's uid and where it is written (for the uid rules)."""
    for target, (at, _) in entries(user).items():
        yield ("friends", at), target


def over_limits(uid: str, user: Mapping[str, Any], provider: str, caps: Capabilities) -> Iterator[Finding]:
    """Aliases and ext fields longer, or more, than the platform takes."""
    alias_limit = caps.max_length.get("friends.*.alias")
    value_limit = caps.max_length.get("friends.*.ext.*")
    count_limit = caps.max_items.get("friends.*.ext")
    for target, (at, entry) in entries(user).items():
        path: DocPath = ("users", uid, "friends", at)
        alias, ext = entry.get("alias"), entry.get("ext")
        if alias_limit is not None and isinstance(alias, str) and len(alias) > alias_limit:
            yield _too_long((*path, "alias"), len(alias), provider, alias_limit)
        if not isinstance(ext, dict):
            continue
        if count_limit is not None and len(ext) > count_limit:
            yield Finding(
                (*path, "ext"),
                f"{len(ext)} ext fields for friend '{target}', over the {provider} limit of {count_limit}",
                f"keep at most {count_limit}",
            )
        for key, value in ext.items():
            if value_limit is not None and isinstance(value, str) and len(value) > value_limit:
                yield _too_long((*path, "ext", key), len(value), provider, value_limit)


def _too_long(path: DocPath, length: int, provider: str, limit: int) -> Finding:
    return Finding(
        path,
        f"{length} characters, over the {provider} limit of {limit}",
        f"shorten it to at most {limit} characters",
    )
