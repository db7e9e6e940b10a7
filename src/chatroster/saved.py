"""Saved plans (`plan --out`, `apply --plan`): write one, read one back, and check
that it still holds and that it asks for nothing the manifest does not.

A saved plan file is input like any other, and it may have been edited. `apply --plan`
therefore trusts nothing in it beyond the choice of changes:

1. the file must match `schemas/plan.schema.json` strictly (no nulls where values
   belong, a digest of the manifest it was made from, fingerprints);
2. the manifest it names must be the one it was made from (digest checked), for the
   same platform and owner, and not older than ``--max-age``;
3. the plan is made afresh from that manifest and the live state read now: every saved
   change must be one of the fresh plan's changes, with the same action, target,
   before- and after-values. A change whose live object moved since is stale; one whose
   end state is already live is skipped (so a half-applied plan is finished); any other
   difference is refused, naming the uid and field.

So an edited plan can at most leave changes out: it can never widen what apply does
beyond what the manifest says and the reviewer saw.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

from .changes import ROLE_ACTIONS, Action, Change
from .errors import PlanFileError
from .fingerprint import fingerprint, reached
from .model import Manifest, State, thaw
from .plan import Plan
from .planner import BAN_TOLERANCE
from .providers import Provider
from .refresh import recorded_uids
from .runner import Options, make_plan, read_live

#: Saved plans larger than this are not plans chatroster wrote (100k changes ≈ 60 MB).
MAX_PLAN_BYTES = 512 * 1024 * 1024


# ------------------------------------------------------------------------- write


def plan_document(plan: Plan, path: Path) -> dict[str, Any]:
    """The JSON a saved plan holds. Manifest paths are kept relative to the plan file,
    so that the plan still finds its manifest when the checkout moves."""
    data = plan.to_json()
    data["fingerprints"] = dict(plan.fingerprints)  # present even when empty: a saved plan
    base = path.resolve().parent
    data["manifest_files"] = [os.path.relpath(name, base) for name in plan.manifest_files]
    if isinstance(data["provider"].get("path"), str):  # the local store, likewise
        data["provider"]["path"] = os.path.relpath(data["provider"]["path"], base)
    return data


# -------------------------------------------------------------------------- read


def load_plan(path: Path) -> Plan:
    """Read and strictly check a saved plan; manifest paths come back absolute."""
    data = _read_json(path)
    problems = _schema_problems(data)
    if problems:
        listed = "\n".join(f"  {line}" for line in problems[:20])
        raise PlanFileError(
            f"{path}: not a valid saved plan:\n{listed}\nMake the plan again "
            "with `chatroster plan --out`; a saved plan is not edited by hand."
        )
    plan = Plan.from_json(data)
    _check_summary(path, plan, data["summary"])
    base = path.resolve().parent
    provider = dict(plan.provider)
    if isinstance(provider.get("path"), str):
        provider["path"] = str((base / provider["path"]).resolve())
    return plan.evolve(
        provider=provider, manifest_files=tuple(str((base / name).resolve()) for name in plan.manifest_files)
    )


def _read_json(path: Path) -> dict[str, Any]:
    try:
        if not path.is_file():
            what = "no such plan file" if not path.exists() else "not a regular file"
            raise PlanFileError(f"{path}: {what}; make one with `chatroster plan --out {path}`")
        if path.stat().st_size > MAX_PLAN_BYTES:
            raise PlanFileError(f"{path}: too large to be a saved plan; make the plan again")
        data = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise PlanFileError(
            f"{path}: not a readable plan file ({_reason(exc)}); make the plan "
            "again with `chatroster plan --out`"
        ) from None
    if not isinstance(data, dict) or "changes" not in data:
        raise PlanFileError(f"{path}: not a chatroster plan; make one with `chatroster plan --out {path}`")
    if data.get("format_version") == 1 and "fingerprints" not in data:
        raise PlanFileError(
            f"{path}: not a saved plan: this is printed output (`--format json`, with personal "
            f"data masked); save a plan to apply with `chatroster plan --out {path}`"
        )
    return data


def _reason(exc: BaseException) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
    if isinstance(exc, UnicodeDecodeError):
        return "not UTF-8 text"
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return str(exc)


@cache
def _validator() -> Any:
    from jsonschema import Draft202012Validator

    text = files("chatroster").joinpath("schemas", "plan.schema.json").read_text("utf-8")
    schema = json.loads(text)
    # The saved form: the printed form's structure plus what apply --plan relies on.
    return Draft202012Validator({**schema, "$ref": "#/$defs/saved"})


def _schema_problems(data: Mapping[str, Any]) -> list[str]:
    errors = sorted(_validator().iter_errors(data), key=lambda e: list(map(str, e.path)))
    return [f"{_where(error.path)}: {error.message[:200]}" for error in errors]


def _where(path: Iterable[Any]) -> str:
    parts = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)
    return parts.lstrip(".") or "(the whole file)"


def _check_summary(path: Path, plan: Plan, summary: Mapping[str, Any]) -> None:
    if dict(summary) != plan.summary():
        raise PlanFileError(
            f"{path}: the summary does not match the changes listed; the file "
            "was edited or damaged; make the plan again"
        )
    keys = [change.key for change in plan.changes]
    if len(set(keys)) != len(keys):
        twice = sorted({key for key in keys if keys.count(key) > 1})[:5]
        raise PlanFileError(
            f"{path}: changes listed twice ({', '.join(twice)}); the file was "
            "edited or damaged; make the plan again"
        )


# ------------------------------------------------------------------------- check


def check_origin(
    plan: Plan, manifest: Manifest, identity: dict[str, object], now: datetime, max_age: timedelta | None
) -> None:
    """Refuse a plan made for another platform, owner or manifest, or too old."""
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
    if plan.manifest_digest != manifest.digest:
        raise PlanFileError(
            "the manifest changed since the plan was made; make the plan "
            "again from this manifest and review it"
        )
    if plan.created_at is None or plan.created_at > now + timedelta(minutes=5):
        raise PlanFileError("the plan has no valid creation time; make the plan again")
    if max_age is not None and now - plan.created_at > max_age:
        raise PlanFileError(
            f"the plan was made at {plan.created_at:%Y-%m-%d %H:%M:%S} UTC, "
            f"longer ago than --max-age; make the plan again"
        )


def recheck(
    saved: Plan, manifest: Manifest, provider: Provider, options: Options, *, max_age: timedelta | None = None
) -> Plan:
    """The changes of ``saved`` still to make, checked against a fresh plan.

    Raises `PlanFileError` listing every change that is stale or that the manifest does
    not ask for. The result carries the fresh plan's ``managed`` count and conflicts, so
    that safety limits are measured on what is live, not on numbers from the file.
    """
    check_origin(saved, manifest, provider.identity(), options.now(), max_age)
    # Every user the file names is read, even one the manifest no longer would read (a
    # pruned user another owner took since): absent from the read, it would look deleted.
    # (Roles are always read whole, in one call.)
    users = [c for c in saved.changes if c.action not in ROLE_ACTIONS]
    named = frozenset(c.uid for c in users) | frozenset(c.target for c in users if c.target)
    options = replace(options, refresh="changed" if saved.refresh == "changed" else "full")
    live = read_live(manifest, provider, uids=named, refresh=options.refresh)
    fresh = make_plan(manifest, provider, options, live=live)
    kept, problems = _compare(saved, fresh, live)
    if problems:
        listed = "\n".join(f"  {line}" for line in problems[:50])
        more = f"\n  ... and {len(problems) - 50} more" if len(problems) > 50 else ""
        raise PlanFileError(
            f"{len(problems)} change(s) of the saved plan cannot be applied:\n{listed}{more}\n"
            "Nothing was applied; make the plan again and review it."
        )
    # Digests only for users whose every fresh change is applied (an edited plan may
    # leave some out): their declaration is what apply reaches.
    records = recorded_uids(fresh, kept)
    return fresh.evolve(
        changes=tuple(kept),
        targeting=saved.targeting,
        created_at=saved.created_at,
        records=records,
        stale=tuple(uid for uid in fresh.stale if uid in set(records)),
    )


def _compare(saved: Plan, fresh: Plan, live: State) -> tuple[list[Change], list[str]]:
    wanted = {change.key: change for change in fresh.changes}
    kept: list[Change] = []
    problems: list[str] = []
    for change in saved.changes:
        recorded = saved.fingerprints.get(change.key)
        unchanged = fingerprint(change, live, saved.owner) == recorded
        problem = _differs(change, wanted.get(change.key), fresh)
        if problem is None and unchanged:
            kept.append(change)
        elif reached(change, live):
            continue  # already done (a half-applied plan, or done by hand): skip it
        elif recorded is None:
            problems.append(
                f"{change.key}: the plan has no fingerprint for this change (was the file edited?)"
            )
        elif not unchanged:
            problems.append(f"{change.key}: the object changed since the plan was made")
        else:
            problems.append(f"{change.key}: {problem}")
    return kept, problems


def _differs(change: Change, fresh: Change | None, plan: Plan) -> str | None:
    """Why ``change`` is not what the manifest asks for now (``None``: it is)."""
    if fresh is None:
        if change.uid in plan.conflicts and change.action not in ROLE_ACTIONS:
            owner = plan.conflict_owners.get(change.uid, "")
            return f"the user belongs to owner '{owner}'; re-run with --allow-takeover to take it over"
        return "the manifest does not ask for this change"
    for side in ("before", "after"):
        mine, theirs = thaw(getattr(change, side)), thaw(getattr(fresh, side))
        for name in sorted(set(mine) | set(theirs)):
            if not _same(change.action, name, mine.get(name), theirs.get(name)):
                return (
                    f"{side}.{name} in the plan is not what the manifest and the live "
                    "state give (was the file edited?)"
                )
    return None


def _same(action: Action, name: str, mine: Any, theirs: Any) -> bool:
    if mine == theirs:
        return True
    # A ban longer than one call allows is capped at now + the maximum: the fresh plan,
    # made later, reaches a little further. An earlier end is within what it allows.
    if action is Action.BAN_USER and name == "until":
        a, b = _time(mine), _time(theirs)
        return a is not None and b is not None and a <= b + BAN_TOLERANCE
    return False


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or value == "forever":
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None
