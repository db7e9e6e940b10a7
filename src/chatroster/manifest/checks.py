"""Semantic checks: what the schema cannot say about a manifest.

They read only the parts of the data that passed the schema, so that a user with a
schema problem is not reported twice, and they report every problem found.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..model import DEFAULT_ROLE, USER_FIELDS
from ..providers import CAPABILITIES, Capabilities
from . import friends
from .finding import DocPath, Finding
from .instant import FOREVER, parse_instant

RELATIONS = {"blocklist": "block", "whitelist": "whitelist"}
"""The user's lists of other users, and the verb for one entry."""

FEATURES = {
    "blocklist": "blocklist",
    "whitelist": "whitelist",
    "tokens_valid_after": "expire_tokens",
    "friends": "friends",
    "friend_permission": "friends",
}
"""User keys that need a capability beyond ``user_fields``: key → `Capabilities` flag."""


@dataclass(frozen=True)
class View:
    """The parts of the manifest that passed the schema."""

    users: dict[str, dict[str, Any]]
    declared: dict[str, dict[str, Any]]
    """Every user whose uid passed the schema, valid or not: the provider's rules judge
    which keys a user has, and its uid, so they are told together with schema problems."""
    bans: dict[str, dict[str, Any]] | None
    banned: list[str]
    """Every banned uid that passed the schema."""
    roles: dict[str, dict[str, Any]] | None
    """Declared roles whose id passed the schema; ``None``: no roles section."""
    protected: list[str]
    prune: str
    provider: str | None
    """The provider's type, or ``None`` when the schema refused it."""
    environment: str = "production"
    """The app's environment (Nexconn: a development app registers at most 100 users)."""

    @classmethod
    def of(cls, data: dict[str, Any], schema_findings: list[Finding]) -> View:
        broken = {finding.path[:2] for finding in schema_findings}
        bad_keys = {finding.path for finding in schema_findings if finding.at == "key"}
        policy = _mapping(data.get("policy"))
        protected = policy.get("protected", [])
        bans = data.get("bans")
        roles = data.get("roles")
        return cls(
            users=_valid(data.get("users"), "users", broken),
            declared=_valid(data.get("users"), "users", bad_keys),
            bans=_valid(bans, "bans", broken) if bans is not None else None,
            banned=[uid for uid in _mapping(bans) if ("bans", uid) not in bad_keys],
            roles=_valid(roles, "roles", bad_keys) if roles is not None else None,
            protected=protected if ("policy", "protected") not in broken else [],
            prune=policy.get("prune", "none") if ("policy", "prune") not in broken else "none",
            provider=_provider_type(data.get("provider")),
            environment=str(_mapping(data.get("provider")).get("environment", "production")),
        )


def check(view: View, now: datetime | None = None) -> list[Finding]:
    """Every semantic problem; provider rules only once the provider's type is known."""
    now = now or datetime.now(UTC)
    findings = [
        *_self_references(view),
        *friends.check(view.users),
        *_protected(view),
        *_instants(view, now),
        *_built_in_role(view),
    ]
    if view.provider is not None:
        capabilities = CAPABILITIES[view.provider]
        findings += _uid_rules(view, view.provider, capabilities)
        findings += _unsupported(view, view.provider, capabilities)
        findings += _over_limits(view, view.provider, capabilities)
        findings += _over_user_limit(view, capabilities)
    return findings


def _over_user_limit(view: View, capabilities: Capabilities) -> Iterator[Finding]:
    """More declared users than a development app can ever register: plan would refuse
    it on every run, so say so offline."""
    limit = capabilities.development_user_limit
    if limit is not None and view.environment == "development" and len(view.declared) > limit:
        yield Finding(
            ("provider", "environment"),
            f"{len(view.declared)} users declared, over the development environment's "
            f"limit of {limit} registered users",
            f"declare at most {limit} users, or use a production app (environment: production)",
        )


def _over_limits(view: View, provider: str, capabilities: Capabilities) -> Iterator[Finding]:
    """Values longer, or lists longer, than the platform takes: refused at apply time
    otherwise, after the user may already have been half made."""
    if not capabilities.max_length and not capabilities.max_items and not capabilities.max_bytes:
        return
    # Each limit's path is split once here, not once per user: this runs for every user.
    sized = [(tuple(name.split(".")), limit) for name, limit in capabilities.max_bytes.items()]
    texts = [(*_text_place(name), limit) for name, limit in capabilities.max_length.items()]
    counted = [(tuple(name.split(".")), limit) for name, limit in capabilities.max_items.items()]
    for uid, user in view.declared.items():
        if capabilities.friends and "friends" in user:
            yield from friends.over_limits(uid, user, provider, capabilities)
        for keys, limit in sized:
            value = _at(user, keys)
            if value is None:
                continue
            size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
            if size > limit:
                yield Finding(
                    ("users", uid, *keys),
                    f"{size} bytes as JSON, over the {provider} limit of {limit} "
                    "(5 KB, less room for chatroster's ownership marker)",
                    f"keep it to at most {limit} bytes, or keep the rest in your own system",
                )
        for keys, each, limit in texts:
            for path, value in _texts(user, keys, each):
                if isinstance(value, str) and len(value) > limit:
                    yield Finding(
                        ("users", uid, *path),
                        f"{len(value)} characters, over the {provider} limit of {limit}",
                        f"shorten it to at most {limit} characters",
                    )
        for keys, limit in counted:
            value = _at(user, keys)
            if isinstance(value, (list, dict)) and len(value) > limit:
                yield Finding(
                    ("users", uid, *keys),
                    f"{len(value)} entries, over the {provider} limit of {limit}",
                    f"keep at most {limit}",
                )


def _text_place(name: str) -> tuple[tuple[str, ...], str]:
    """A text limit's name as the path it names and which texts there: ``tags[]`` every
    item of the list, ``profile.ext.*`` every value of the mapping, else the one value."""
    if name.endswith("[]"):
        return tuple(name[:-2].split(".")), "items"
    if name.endswith(".*"):
        return tuple(name[:-2].split(".")), "values"
    return tuple(name.split(".")), "one"


def _texts(user: dict[str, Any], keys: tuple[str, ...], each: str) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """(path in the user, value) of every text at ``keys`` (see `_text_place`)."""
    found = _at(user, keys)
    if each == "one":
        yield keys, found
    elif each == "items" and isinstance(found, list):
        for index, item in enumerate(found):
            yield (*keys, index), item
    elif each == "values" and isinstance(found, dict):
        for key, item in found.items():
            yield (*keys, key), item


def _at(node: Any, keys: Sequence[str]) -> Any:
    for key in keys:
        node = node.get(key) if isinstance(node, dict) else None
    return node


def _self_references(view: View) -> Iterator[Finding]:
    for uid, user in view.users.items():
        for key, verb in RELATIONS.items():
            entries = user.get(key)
            if isinstance(entries, list) and uid in entries:
                path = ("users", uid, key, entries.index(uid))
                yield Finding(path, f"'{uid}' cannot {verb} itself", f"remove '{uid}' from its {key}")


def _protected(view: View) -> Iterator[Finding]:
    for uid in view.protected:
        if view.bans is not None and uid in view.bans:
            yield Finding(
                ("bans", uid),
                f"'{uid}' is protected and cannot be banned",
                "remove the ban, or remove the user from policy.protected",
                "key",
            )
        if view.users.get(uid, {}).get("active") is False:
            yield Finding(
                ("users", uid, "active"),
                f"'{uid}' is protected and cannot be deactivated",
                "remove active: false, or remove the user from policy.protected",
            )


def _instants(view: View, now: datetime) -> Iterator[Finding]:
    for uid, user in view.users.items():
        if "tokens_valid_after" in user:
            yield from _invalid_instant(("users", uid, "tokens_valid_after"), user["tokens_valid_after"])
    for uid, ban in (view.bans or {}).items():
        path = ("bans", uid, "until")
        until = ban["until"]
        if until == FOREVER:
            continue
        problems = list(_invalid_instant(path, until))
        yield from problems
        if not problems and parse_instant(until) <= now:
            yield Finding(
                path,
                f"the ban of '{uid}' already expired ({until})",
                "remove the ban (a user missing from bans is unbanned)",
            )


def _invalid_instant(path: DocPath, text: str) -> Iterator[Finding]:
    try:
        parse_instant(text)
    except ValueError as error:
        yield Finding(path, f"'{text}' is not a real date and time ({error})")


def _built_in_role(view: View) -> Iterator[Finding]:
    """``default`` exists on every platform and chatroster never changes or deletes it,
    so declaring it could only promise what apply will not do."""
    if view.roles is not None and DEFAULT_ROLE in view.roles:
        yield Finding(
            ("roles", DEFAULT_ROLE),
            f"the built-in role '{DEFAULT_ROLE}' cannot be declared: it always exists and "
            "chatroster never changes it",
            f"remove roles.{DEFAULT_ROLE}; users can hold role: {DEFAULT_ROLE} without it",
            "key",
        )


def _uid_rules(view: View, provider: str, capabilities: Capabilities) -> Iterator[Finding]:
    for path, uid, at in _uid_places(view):
        if not capabilities.uid_pattern.match(uid):
            lower = uid.lower()
            hint = f"use '{lower}'" if capabilities.uid_pattern.match(lower) else ""
            what = "role id" if path[0] == "roles" else "uid"
            message = f"'{uid}' is not a valid {what} for {provider}: {capabilities.uid_rule}"
            yield Finding(path, message, hint, at)


def _uid_places(view: View) -> Iterator[tuple[DocPath, str, Any]]:
    for uid in view.declared:
        yield ("users", uid), uid, "key"
    for uid, user in view.users.items():
        for key in RELATIONS:
            entries = user.get(key)
            for index, target in enumerate(entries if isinstance(entries, list) else ()):
                yield ("users", uid, key, index), target, "value"
        for path, target in friends.targets(user):
            yield ("users", uid, *path), target, "value" if isinstance(path[-1], int) else "key"
    for uid in view.banned:
        yield ("bans", uid), uid, "key"
    for index, uid in enumerate(view.protected):
        yield ("policy", "protected", index), uid, "value"
    for role in view.roles or ():  # role ids follow the platform's uid rules
        yield ("roles", role), role, "key"


def _unsupported(view: View, provider: str, capabilities: Capabilities) -> Iterator[Finding]:
    def lacking(path: DocPath, what: str, alternative_key: str) -> Finding:
        hint = capabilities.alternatives.get(alternative_key, "")
        return Finding(path, f"{what} not supported by the {provider} provider", hint, "key")

    # Decided once per key, not once per key of each of 100k users.
    unsupported = {key for key in (*USER_FIELDS, *FEATURES) if not _supports(capabilities, key)}
    for uid, user in view.declared.items():
        for key in user:
            if key in unsupported:
                yield lacking(("users", uid, key), f"'{key}' is", key)
        if user.get("active") is False and not capabilities.deactivate:
            yield lacking(("users", uid, "active"), "deactivation (active: false) is", "deactivate")
    if view.bans is not None and not capabilities.bans:
        yield lacking(("bans",), "'bans' (app-level bans) are", "bans")
    if view.roles is not None and not capabilities.roles:
        yield lacking(("roles",), "'roles' (declared roles) are", "roles")
    if view.prune == "delete" and not capabilities.delete:
        yield lacking(("policy", "prune"), "prune: delete (permanent delete) is", "delete")
    if view.prune == "deactivate" and not capabilities.deactivate:
        yield lacking(("policy", "prune"), "prune: deactivate is", "deactivate")


def _supports(capabilities: Capabilities, key: str) -> bool:
    if key in USER_FIELDS:
        return key in capabilities.user_fields
    flag = FEATURES.get(key)
    return flag is None or bool(getattr(capabilities, flag))


def _valid(section: Any, name: str, broken: set[DocPath]) -> dict[str, dict[str, Any]]:
    entries = _mapping(section)
    return {
        key: value for key, value in entries.items() if (name, key) not in broken and isinstance(value, dict)
    }


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _provider_type(provider: Any) -> str | None:
    kind = _mapping(provider).get("type", "local") if provider is not None else "local"
    return kind if isinstance(kind, str) and kind in CAPABILITIES else None
