"""Saved plans (`plan --out`, `apply --plan`): read one back and check it still holds."""

from __future__ import annotations

import json
from pathlib import Path

from .errors import PlanFileError
from .model import Manifest
from .plan import Plan
from .providers import Provider


def load_plan(path: Path) -> Plan:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise PlanFileError(f"{path}: no such plan file; make one with `chatroster plan --out`") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PlanFileError(f"{path}: not a readable plan file ({exc}); make the plan again") from None
    if not isinstance(data, dict):
        raise PlanFileError(f"{path}: not a chatroster plan; make the plan again")
    return Plan.from_json(data)


def recheck(plan: Plan, manifest: Manifest, provider: Provider) -> Plan:
    """The saved plan, if it was made for this provider and app."""
    identity = provider.identity()
    if dict(plan.provider) != identity:
        raise PlanFileError(
            f"the plan was made for {dict(plan.provider)}, but the manifest points at "
            f"{identity}; make the plan again for this platform"
        )
    if plan.owner != manifest.owner:
        raise PlanFileError(
            f"the plan was made for owner '{plan.owner}', the manifest says "
            f"'{manifest.owner}'; make the plan again"
        )
    return plan
