"""The plan as markdown for a pull-request comment: a summary table, then the changes
grouped by user, folded when long and capped in size."""

from __future__ import annotations

import re
from itertools import groupby

from ..changes import Change
from ..masking import Masker
from ..plan import Plan
from .describe import code, describe, refresh_words, targeting_words
from .text import summary_line

#: GitHub refuses comments over 65,536 characters; leave room for the wrapper.
MAX_CHARS = 60_000
#: More changes than this for one user are folded into <details>.
FOLD_AFTER = 5
#: Characters that markdown would read as markup in plain text.
MARKDOWN_SPECIAL = re.compile(r"([\\`*_<>\[\]#|~])")


def plan_markdown(plan: Plan, masker: Masker, *, max_chars: int = MAX_CHARS) -> str:
    head = [f"### chatroster plan: {plan.provider.get('type', '?')}, owner `{plan.owner}`", ""]
    if plan.targeting:
        head += ["> **Targeted plan:** " + targeting_words(plan.targeting, code), ""]
    head += [refresh_words(plan, code), ""]
    notes = [f"> ⛔ **refused:** {r}" for r in plan.refusals()]
    notes += [f"> ⚠️ {_plain(warning)}" for warning in plan.warnings]
    head += notes + ([""] if notes else [])
    if plan.empty:
        return "\n".join(head + [summary_line(plan), ""])
    head += ["| action | count |", "|---|---:|"]
    head += [f"| {action} | {n} |" for action, n in plan.summary().items()]
    head.append("")
    body: list[str] = []
    by_user = groupby(sorted(plan.changes, key=lambda c: (c.uid, c.sort_key)), key=lambda c: c.uid)
    for users, (uid, group) in enumerate(by_user):
        block = _user_block(uid, list(group), masker)
        if len("\n".join(head + body + block)) > max_chars:
            left = len({c.uid for c in plan.changes}) - users
            body.append(
                f"_… {left} more user(s) left out to keep this comment short; "
                "run `chatroster plan` to see every change._"
            )
            break
        body += block
    return "\n".join(head + body) + "\n"


def _plain(text: str) -> str:
    """``text`` shown as it is: a glob's ``*`` is not emphasis, nor ``<x>`` HTML."""
    return MARKDOWN_SPECIAL.sub(r"\\\1", text)


def _user_block(uid: str, changes: list[Change], masker: Masker) -> list[str]:
    items = []
    for change in changes:
        line = describe(change, masker)
        headline = f"`{line.symbol}` {line.headline}"
        if line.destructive:
            headline = f"⚠️ **{headline}**"
        items.append(f"- {headline}")
        items += [f"  - {code(detail)}" for detail in line.details]
    title = f"**`{uid}`**: {len(changes)} change(s)"
    if len(changes) > FOLD_AFTER:
        return [f"<details><summary>{title}</summary>", "", *items, "", "</details>", ""]
    return [title, "", *items, ""]
