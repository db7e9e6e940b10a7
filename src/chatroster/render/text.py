"""The plan for a terminal: readable, coloured when the terminal allows it."""

from __future__ import annotations

import click

from ..masking import Masker
from ..plan import Plan
from .describe import describe, refresh_words, targeting_words

COLOURS = {"+": "green", "-": "red", "~": "yellow", "*": "cyan", "!": "magenta"}


def plan_text(plan: Plan, masker: Masker, *, colour: bool) -> str:
    def paint(text: str, symbol: str, bold: bool = False) -> str:
        return click.style(text, fg=COLOURS.get(symbol), bold=bold) if colour else text

    lines = [_header(plan)]
    for change in plan.changes:
        line = describe(change, masker)
        lines.append(paint(f"  {line.symbol} {line.headline}", line.symbol, line.destructive))
        lines += [f"      {detail}" for detail in line.details]
    lines += [paint(f"  refused: {refusal}", "-", True) for refusal in plan.refusals()]
    lines += [paint(f"  warning: {warning}", "!") for warning in plan.warnings]
    lines.append(summary_line(plan))
    return "\n".join(lines)


def _header(plan: Plan) -> str:
    where = ", ".join(f"{k}={v}" for k, v in plan.provider.items() if k != "type")
    text = f"Plan for {plan.provider.get('type', '?')} ({where}), owner '{plan.owner}'"
    if plan.targeting:
        text += "\nTargeted plan: " + targeting_words(plan.targeting)
    return text + "\n" + refresh_words(plan)


def summary_line(plan: Plan) -> str:
    if plan.empty and plan.conflicts:
        return f"No changes planned, but {len(plan.conflicts)} user(s) refused (above)."
    if plan.empty and plan.targeting:
        return "No changes within the targeting."
    if plan.empty:
        return "No changes. Live state matches the manifest."
    counts = ", ".join(f"{n} {action}" for action, n in plan.summary().items())
    return f"Plan: {len(plan.changes)} change(s): {counts}."
