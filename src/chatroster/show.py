"""`chatroster show`: named users as the platform holds them, read-only.

For each uid: every field the manifest could declare on this platform, the owner
marker, active, the ban, the sizes of the user's lists (blocklist, whitelist, and any
list a provider adds through `Provider.list_sizes`, such as friends) and whether the
user is online. Values are masked as in plan output unless ``--show-personal``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .masking import Masker
from .model import Ban, Manifest, User, thaw
from .planner import iso
from .providers import CAPABILITIES, Provider, Scope
from .providers.base import Capabilities, Presence


@dataclass(frozen=True)
class Shown:
    """One named user: ``user`` is ``None`` when the platform has no such uid."""

    uid: str
    user: User | None
    ban: Ban | None = None
    presence: Presence = Presence()
    sizes: Mapping[str, int | None] = field(default_factory=dict)
    """Entries in each of the user's lists, by list name; ``None``: cannot be read."""


@dataclass(frozen=True)
class Report:
    users: tuple[Shown, ...]
    provider: Mapping[str, Any]
    owner: str
    capabilities: Capabilities

    @property
    def unknown(self) -> list[str]:
        return [shown.uid for shown in self.users if shown.user is None]


def read_users(manifest: Manifest, provider: Provider, uids: Sequence[str]) -> Report:
    """Read ``uids`` with their lists, bans and presence; writes nothing."""
    caps = CAPABILITIES[manifest.provider.type]
    wanted = frozenset(uids)
    scope = Scope(
        uids=wanted,
        owner=manifest.owner,
        blocklists=wanted if caps.blocklist else frozenset(),
        whitelists=wanted if caps.whitelist else frozenset(),
        bans=caps.bans,
    )
    live = provider.read(scope)
    found = [uid for uid in dict.fromkeys(uids) if uid in live.users]
    presence = provider.presence(found)
    extra = provider.list_sizes(found)
    bans = live.bans or {}
    shown = []
    for uid in dict.fromkeys(uids):
        user = live.users.get(uid)
        if user is None:
            shown.append(Shown(uid, None))
            continue
        sizes = _sizes(user, caps) | dict(extra.get(uid, {}))
        shown.append(Shown(uid, user, bans.get(uid), presence.get(uid, Presence()), sizes))
    return Report(tuple(shown), provider.identity(), manifest.owner, caps)


def _sizes(user: User, caps: Capabilities) -> dict[str, int | None]:
    sizes: dict[str, int | None] = {}
    if caps.blocklist:
        sizes["blocklist"] = None if user.blocklist is None else len(user.blocklist)
    if caps.whitelist:
        sizes["whitelist"] = None if user.whitelist is None else len(user.whitelist)
    return sizes


# ---------------------------------------------------------------------- rendering


def user_json(shown: Shown, caps: Capabilities, masker: Masker) -> dict[str, Any]:
    user = shown.user
    if user is None:
        return {"uid": shown.uid, "exists": False}
    data: dict[str, Any] = {"uid": shown.uid, "exists": True, "owner": user.owner, "active": user.active}
    for name, value in user.fields().items():
        if name in caps.user_fields:
            data[name] = masker.field(name, thaw(value))
    if caps.bans:
        data["ban"] = None if shown.ban is None else {"until": iso(shown.ban.until) or "forever"}
    data["lists"] = dict(shown.sizes)
    if caps.whitelist:
        data["whitelist_mode"] = user.whitelist_mode
    if caps.expire_tokens:
        data["tokens_valid_after"] = iso(user.tokens_valid_after)
    data["online"] = shown.presence.online
    data["last_active_at"] = iso(shown.presence.last_active_at)
    return data


def report_json(report: Report, masker: Masker) -> dict[str, Any]:
    return {
        "provider": dict(report.provider),
        "owner": report.owner,
        "users": [user_json(shown, report.capabilities, masker) for shown in report.users],
        "unknown": report.unknown,
    }


def report_text(report: Report, masker: Masker) -> str:
    blocks = [_user_text(user_json(shown, report.capabilities, masker)) for shown in report.users]
    return "\n\n".join(blocks)


def _user_text(data: Mapping[str, Any]) -> str:
    if not data["exists"]:
        return f"{data['uid']}: not on the platform"
    state = "active" if data["active"] else "deactivated"
    owner = f"owner '{data['owner']}'" if data["owner"] else "no owner"
    lines = [f"{data['uid']} ({state}, {owner})"]
    skip = {"uid", "exists", "owner", "active", "lists", "online", "last_active_at", "whitelist_mode"}
    for name, value in data.items():
        if name == "ban":
            lines.append(f"  ban: {'none' if value is None else 'until ' + value['until']}")
        elif name not in skip:
            lines.append(f"  {name}: {_shown(value)}")
    for name, size in data["lists"].items():
        count = "unknown (cannot be read)" if size is None else f"{size} user(s)"
        mode = data.get("whitelist_mode") if name == "whitelist" else None
        lines.append(f"  {name}: {count}" + (", whitelist mode on" if mode else ""))
    lines.append(f"  online: {_presence(data)}")
    return "\n".join(lines)


def _shown(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, list):
        return ", ".join(map(str, value)) if value else "(none)"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_shown(v)}" for k, v in value.items()) if value else "(none)"
    return str(value)


def _presence(data: Mapping[str, Any]) -> str:
    online = data["online"]
    said = "unknown" if online is None else ("yes" if online else "no")
    if data["last_active_at"]:
        said += f" (last active {data['last_active_at']})"
    return said
