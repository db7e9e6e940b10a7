"""Printed forms of a drift report (`chatroster.drift`): text and markdown; its JSON
form is `DriftReport.to_json`."""

from __future__ import annotations

from ..drift import DriftReport
from .describe import code


def drift_text(drift: DriftReport) -> str:
    """A drift report for a terminal or a log."""
    if drift.clean:
        return "In sync: live state matches the manifest."
    lines = [f"Drift on {drift.provider.get('type', '?')}, owner '{drift.owner}':"]
    for d in drift.differences:
        lines.append(f"  [{d.kind}] {d.uid}: {d.description}")
        lines += [f"      {detail}" for detail in d.details]
    lines.append("Summary: " + ", ".join(f"{n} {kind}" for kind, n in drift.counts().items()))
    return "\n".join(lines)


def drift_markdown(drift: DriftReport) -> str:
    """A drift report for an issue or a pull-request comment."""
    head = f"### chatroster drift: {drift.provider.get('type', '?')}, owner `{drift.owner}`\n"
    if drift.clean:
        return head + "\nIn sync: live state matches the manifest.\n"
    rows = ["| kind | count |", "|---|---:|"]
    rows += [f"| {kind} | {n} |" for kind, n in drift.counts().items()]
    items = []
    for d in drift.differences:
        items.append(f"- **{d.kind}** `{d.uid}`: {d.description}")
        items += [f"  - {code(detail)}" for detail in d.details]
    return head + "\n" + "\n".join(rows) + "\n\n" + "\n".join(items) + "\n"
