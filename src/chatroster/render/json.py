"""The plan as JSON, with personal data masked (the saved plan file is not masked)."""

from __future__ import annotations

from typing import Any

from ..masking import Masker
from ..plan import Plan


def plan_json(plan: Plan, masker: Masker) -> dict[str, Any]:
    data = plan.to_json()
    data.pop("fingerprints", None)  # internal to apply --plan; not for readers
    for change in data["changes"]:
        change["before"] = masker.fields(change["before"])
        change["after"] = masker.fields(change["after"])
    return data
