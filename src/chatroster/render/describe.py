"""One description of a change, shared by the text and markdown renderers."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..changes import DESTRUCTIVE, Action, Change
from ..masking import Masker
from ..model import thaw
from ..plan import Plan

SYMBOLS = {
    Action.CREATE_USER: "+",
    Action.ADOPT_USER: "*",
    Action.UPDATE_USER: "~",
    Action.REACTIVATE_USER: "+",
    Action.DEACTIVATE_USER: "-",
    Action.DELETE_USER: "-",
    Action.BAN_USER: "!",
    Action.UNBAN_USER: "-",
    Action.ADD_BLOCK: "+",
    Action.REMOVE_BLOCK: "-",
    Action.ADD_WHITELIST: "+",
    Action.REMOVE_WHITELIST: "-",
    Action.SET_WHITELIST_MODE: "~",
    Action.ADD_FRIEND: "+",
    Action.REMOVE_FRIEND: "-",
    Action.UPDATE_FRIEND: "~",
    Action.SET_FRIEND_PERMISSION: "~",
    Action.EXPIRE_TOKENS: "~",
    Action.CREATE_ROLE: "+",
    Action.UPDATE_ROLE: "~",
    Action.DELETE_ROLE: "-",
}


@dataclass(frozen=True)
class Line:
    """A change as the reader sees it: a headline and detail lines."""

    symbol: str
    headline: str
    details: tuple[str, ...]
    destructive: bool


_JSON = json.JSONEncoder(ensure_ascii=False, sort_keys=True, default=str).encode
"""``json.dumps`` with these options, without building an encoder for each of the
several values of each of 100k changes."""


def show(value: Any) -> str:
    return _JSON(thaw(value))


def describe(change: Change, masker: Masker) -> Line:
    target = f" → {change.target}" if change.target else ""
    headline = f"{change.action.value} {change.uid}{target}"
    if change.note:
        headline += f"  ({change.note})"
    return Line(
        symbol=SYMBOLS[change.action],
        headline=headline,
        details=tuple(_details(change, masker)),
        destructive=change.action in DESTRUCTIVE,
    )


def _details(change: Change, masker: Masker) -> list[str]:
    if change.action in (Action.CREATE_USER, Action.CREATE_ROLE):
        return [f"{name}: {show(value)}" for name, value in masker.fields(change.after).items()]
    if change.action in (
        Action.ADD_BLOCK,
        Action.REMOVE_BLOCK,
        Action.ADD_WHITELIST,
        Action.REMOVE_WHITELIST,
        Action.REMOVE_FRIEND,
    ):
        return []
    lines: list[str] = []
    for name in sorted(set(change.before) | set(change.after)):
        lines += field_lines(name, change.before.get(name), change.after.get(name), masker)
    return lines


def field_lines(name: str, before: Any, after: Any, masker: Masker) -> list[str]:
    """``name: old → new``; nested mappings (metadata, profile) key by key."""
    old, new = masker.field(name, before), masker.field(name, after)
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        return _nested(name, thaw(old), thaw(new))
    return [f"{name}: {show(old)} → {show(new)}"]


def _nested(name: str, old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    from deepdiff import DeepDiff  # imported when needed: it costs a third of start-up

    diff = DeepDiff(old, new, verbose_level=2, ignore_order=True)
    lines = []
    for path, item in diff.get("values_changed", {}).items():
        lines.append(f"{_path(name, path)}: {show(item['old_value'])} → {show(item['new_value'])}")
    for path, item in diff.get("type_changes", {}).items():
        lines.append(f"{_path(name, path)}: {show(item['old_value'])} → {show(item['new_value'])}")
    for path, value in diff.get("dictionary_item_added", {}).items():
        lines.append(f"{_path(name, path)}: (none) → {show(value)}")
    for path, value in diff.get("dictionary_item_removed", {}).items():
        lines.append(f"{_path(name, path)}: {show(value)} → (none)")
    for kind in ("iterable_item_added", "iterable_item_removed"):
        for path, value in diff.get(kind, {}).items():
            verb = "added" if kind.endswith("added") else "removed"
            lines.append(f"{_path(name, path)}: {verb} {show(value)}")
    return sorted(lines)


def _path(name: str, deepdiff_path: str) -> str:
    """``root['team']['lead']`` → ``metadata.team.lead``."""
    inner = deepdiff_path.removeprefix("root")
    parts = [part.strip("'\"") for part in inner.strip("[]").split("][") if part]
    return ".".join([name, *parts])


def targeting_words(targeting: Mapping[str, Any], quote: Callable[[str], str] = str) -> str:
    """--target/--exclude/--only in plain words: ``only uids matching u00*, excluding
    bot-*, only blocklists``; ``quote`` shows a glob (markdown: as code)."""
    parts = []
    if targeting.get("target"):
        parts.append("only uids matching " + _listed(map(quote, targeting["target"]), "or"))
    if targeting.get("exclude"):
        parts.append("excluding " + _listed(map(quote, targeting["exclude"]), "and"))
    if targeting.get("only"):
        parts.append("only " + _listed(targeting["only"], "and"))
    return ", ".join(parts)


def _listed(items: Iterable[str], word: str) -> str:
    """``a``, ``a or b``, ``a, b or c``."""
    listed = list(items)
    if len(listed) < 2:
        return "".join(listed)
    return f"{', '.join(listed[:-1])} {word} {listed[-1]}"


def refresh_words(plan: Plan, quote: Callable[[str], str] = str) -> str:
    """Which refresh the plan used, how many users it trusted, and what apply records:
    ``Refresh: changed (998 users trusted without per-user reads); apply records the
    applied state of 2 users``."""
    text = f"Refresh: {quote(plan.refresh)}"
    if plan.refresh == "changed":
        text += f" ({plan.trusted} user(s) trusted without per-user reads)"
    if plan.records:
        text += f"; apply records the applied state of {len(plan.records)} user(s)"
    return text + "."


def code(text: str) -> str:
    """``text`` as a markdown code span that nothing inside it can close early.

    Values come from the manifest and the platform: a backtick in a name must not end
    the span and let the rest render as markdown or HTML in a pull-request comment.
    """
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text.strip() else ""
    return f"{fence}{pad}{text}{pad}{fence}"
