"""Export: live state written as a format-1 manifest, to adopt an existing app.

`export_manifest` is pure (live state in, plain data out); `dump_yaml` renders that
data for people to read and review. Loading the result and planning it against the
same platform gives no changes: every value is written in the form the loader reads
back to an equal `User` or `Ban`.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from typing import Any, TextIO

import yaml
from yaml.nodes import ScalarNode
from yaml.resolver import Resolver

from .bulk import paused_collection
from .model import DEFAULT_ROLE, USER_FIELDS, Ban, ProviderConfig, Role, State, User, thaw
from .planner import iso
from .providers import CAPABILITIES

SCHEMA_FILE = "schemas/manifest.schema.json"

#: Top-level keys in the order PRODUCT.md shows them.
TOP_KEYS = ("version", "provider", "owner", "policy", "users", "roles", "bans")
#: A user's keys: the profile fields, then the state the manifest can also manage.
USER_KEYS = (
    *USER_FIELDS,
    "active",
    "blocklist",
    "whitelist",
    "tokens_valid_after",
    "friends",
    "friend_permission",
)


@paused_collection()  # a mapping per user, 100k and more: see `chatroster.bulk`
def export_manifest(live: State, *, provider: ProviderConfig, owner: str) -> dict[str, Any]:
    """The manifest that declares ``live`` as it is: only what is set, nothing secret.

    Users another owner's manifest holds, and their bans, are left out: declaring them
    here would only make every plan refuse them as a takeover.
    """
    theirs = {uid for uid, user in live.users.items() if user.owner not in (None, owner)}
    data: dict[str, Any] = {
        "version": 1,
        "provider": _provider(provider),
        "owner": owner,
        "users": {uid: _user(user) for uid, user in sorted(live.users.items()) if uid not in theirs},
    }
    # Roles likewise, but for the built-in ``default``, which cannot be declared.
    if live.roles is not None and _has_roles(provider.type):
        roles = sorted(live.roles.items())
        data["roles"] = {
            name: _role(role) for name, role in roles if name != DEFAULT_ROLE and role.owner in (None, owner)
        }
    # An empty ``bans: {}`` is written on purpose: the app was read to have none, and
    # the manifest says so. Platforms without bans get no section (it would not validate).
    if live.bans is not None and _has_bans(provider.type):
        bans = sorted(live.bans.items())
        data["bans"] = {uid: _ban(ban) for uid, ban in bans if uid not in theirs}
    return data


def _provider(config: ProviderConfig) -> dict[str, Any]:
    """Public settings as they are; each secret as the ``${VAR}`` the manifest needs.

    The secret's value never leaves the process; the reference keeps the exported
    manifest valid (the schema requires the keys) and says where the value comes from.
    """
    section: dict[str, Any] = {"type": config.type, **thaw(config.public())}
    for key in sorted(config.SECRET_KEYS & set(config.settings)):
        section[key] = f"${{{config.type.upper()}_{key.upper()}}}"
    return section


def _has_bans(provider_type: str) -> bool:
    capabilities = CAPABILITIES.get(provider_type)
    return capabilities is None or capabilities.bans


def _has_roles(provider_type: str) -> bool:
    capabilities = CAPABILITIES.get(provider_type)
    return capabilities is None or capabilities.roles


def _role(role: Role) -> dict[str, Any]:
    entry: dict[str, Any] = {}
    if role.description is not None:
        entry["description"] = role.description
    if role.metadata is not None:
        entry["metadata"] = thaw(role.metadata)
    return entry


def _user(user: User) -> dict[str, Any]:
    # Empty values are left out: absent (unmanaged) and empty plan the same against
    # this live state, and the manifest stays short.
    entry = {name: thaw(value) for name, value in user.fields().items() if _is_set(value)}
    if "name" not in entry:
        # The manifest requires a name; a user without one (Nexconn deletes a deactivated
        # user's name) gets its uid, which a reactivation would then write.
        entry = {"name": user.uid, **entry}
    if user.active is False:
        entry["active"] = False
    if user.blocklist is not None:  # read, so managed: [] means "blocks no one"
        entry["blocklist"] = sorted(user.blocklist)
    if user.whitelist is not None:
        entry["whitelist"] = sorted(user.whitelist) if user.whitelist_mode else False
    if user.tokens_valid_after is not None:
        entry["tokens_valid_after"] = iso(user.tokens_valid_after)
    if user.friends is not None:
        entry["friends"] = _friends(user.friends)
    if user.friend_permission not in (None, "anyone"):  # "anyone": never set, or the default
        entry["friend_permission"] = user.friend_permission
    return entry


def _friends(friends: Mapping[str, Mapping[str, Any]]) -> list[str] | dict[str, Any]:
    """A list of uids while no friend has an alias or ext; else the mapping form, with
    only the values that are set (``{}``: just the friendship)."""
    described = {
        uid: {key: thaw(value) for key, value in entry.items() if key in ("alias", "ext") and _is_set(value)}
        for uid, entry in sorted(friends.items())
    }
    if not any(described.values()):
        return sorted(friends)
    return described


def _is_set(value: Any) -> bool:
    return value is not None and value != "" and value != () and value != {}


def _ban(ban: Ban) -> dict[str, str]:
    return {"until": iso(ban.until) or "forever"}


# ------------------------------------------------------------------------- YAML


#: libyaml's emitter writes 100k users in seconds where the pure-Python one takes a
#: minute; both write the same text.
_BASE_DUMPER: type = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

_TEXT_TAG = "tag:yaml.org,2002:str"
_SCALARS = {
    bool: lambda value: ScalarNode("tag:yaml.org,2002:bool", "true" if value else "false"),
    int: lambda value: ScalarNode("tag:yaml.org,2002:int", str(value)),
    type(None): lambda value: ScalarNode("tag:yaml.org,2002:null", "null"),
}


class _Dumper(_BASE_DUMPER):  # type: ignore[misc]
    """The safe dumper, with its two per-value steps made direct: 100k users are
    millions of values, and each step was a chain of Python calls per value.

    The nodes and tags are the ones SafeDumper makes, so the text is the same; any
    other value (a float, a list, a mapping) takes SafeDumper's own path.
    """

    def represent_data(self, data: Any) -> Any:
        if type(data) is str:
            return ScalarNode(_TEXT_TAG, data)
        make = _SCALARS.get(type(data))
        return make(data) if make is not None else super().represent_data(data)

    def resolve(self, kind: Any, value: Any, implicit: tuple[bool, bool]) -> Any:
        # The emitter asks twice per value which tag its plain and its quoted form would
        # read as. This dumper has no path resolvers, so that is the implicit type for a
        # plain form and text otherwise; keys and many values repeat, hence the cache.
        if kind is ScalarNode:
            return _plain_tag(value) if implicit[0] else self.DEFAULT_SCALAR_TAG
        return super().resolve(kind, value, implicit)


@lru_cache(maxsize=4096)
def _plain_tag(value: str) -> str:
    """The tag ``value`` reads as when written plain, as PyYAML's resolver decides it."""
    resolvers = Resolver.yaml_implicit_resolvers
    for tag, pattern in [*resolvers.get(value[:1], ()), *resolvers.get(None, ())]:
        if pattern.match(value):
            return str(tag)
    return _TEXT_TAG


CHUNK = 1000
"""Users (roles, bans) rendered at a time: PyYAML builds a node per value of what it
dumps, so a whole 100k-user document at once took over a gigabyte."""

_LARGE = ("users", "roles", "bans")


@paused_collection()  # a node per value, millions for 100k users: see `chatroster.bulk`
def write_yaml(data: Mapping[str, Any], stream: TextIO) -> None:
    """Readable YAML for a manifest, written to ``stream`` piece by piece: known keys in
    order, users sorted by uid. The text is the same as one dump of the whole document:
    each top-level key is its own block, and a large section is dumped `CHUNK` entries
    at a time under its key, the key's line written once.

    Times are strings in ``data``; PyYAML quotes any string that would read back as a
    timestamp, so they reload as the same strings.
    """
    stream.write(f"# chatroster manifest, format 1; schema: {SCHEMA_FILE}\n")
    for key, value in _in_order(data, TOP_KEYS).items():
        if key not in _LARGE or not isinstance(value, Mapping) or not value:
            stream.write(_dump({key: value}))
            continue
        names = sorted(value)
        for start in range(0, len(names), CHUNK):
            part = {name: _entry(key, value[name]) for name in names[start : start + CHUNK]}
            text = _dump({key: part})
            stream.write(text if start == 0 else text.split("\n", 1)[1])


def dump_yaml(data: Mapping[str, Any]) -> str:
    """`write_yaml` into a string."""
    buffer = io.StringIO()
    write_yaml(data, buffer)
    return buffer.getvalue()


def _dump(data: Mapping[str, Any]) -> str:
    text: str = yaml.dump(
        data,
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=1000,  # no folded lines: a long URL stays on one line
    )
    return text


def _entry(section: str, value: Any) -> Any:
    return _in_order(value, USER_KEYS) if section == "users" and isinstance(value, Mapping) else value


def _in_order(mapping: Mapping[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """Known keys first, in ``keys`` order; any others after them, as they came."""
    first = {key: mapping[key] for key in keys if key in mapping}
    return {**first, **{key: value for key, value in mapping.items() if key not in first}}


def relocated(config: ProviderConfig, directory: Path) -> ProviderConfig:
    """The provider section as seen from ``directory``: a relative local ``path`` is
    rewritten so that a manifest exported there points at the same store file."""
    if config.type != "local":
        return config
    from .providers.local import DEFAULT_PATH

    path = config.settings.get("path", DEFAULT_PATH)
    if not isinstance(path, str) or Path(path).is_absolute():
        return config
    store = (Path(config.base_dir) / path).resolve()
    moved = os.path.relpath(store, directory.resolve())
    return replace(config, settings={**config.settings, "path": moved}, base_dir=str(directory))
