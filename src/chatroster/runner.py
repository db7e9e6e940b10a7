"""The workflow between the CLI and the core: manifest → scope → live state → plan.

The CLI parses and prints; this module decides what to read and what to plan, so the
same steps serve plan, apply, drift and the GitHub Action.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from .bulk import paused_collection
from .changes import Action, Change
from .errors import ChatrosterError, ManifestError, Problem
from .fingerprint import fingerprints
from .model import Manifest, State
from .plan import Plan
from .planner import Context, plan, unknown_roles
from .providers import CAPABILITIES, Provider, Scope
from .refresh import Awaited, Refresh, to_record, trusting
from .schedule import EXISTENCE

#: --only kinds and the actions each one covers.
KINDS: dict[str, frozenset[Action]] = {
    "users": frozenset(
        {
            Action.ADOPT_USER,
            Action.CREATE_USER,
            Action.UPDATE_USER,
            Action.REACTIVATE_USER,
            Action.DEACTIVATE_USER,
            Action.DELETE_USER,
            Action.EXPIRE_TOKENS,
        }
    ),
    "bans": frozenset({Action.BAN_USER, Action.UNBAN_USER}),
    "roles": frozenset({Action.CREATE_ROLE, Action.UPDATE_ROLE, Action.DELETE_ROLE}),
    "blocklists": frozenset({Action.ADD_BLOCK, Action.REMOVE_BLOCK}),
    "whitelists": frozenset(
        {
            Action.ADD_WHITELIST,
            Action.REMOVE_WHITELIST,
            Action.SET_WHITELIST_MODE,
        }
    ),
    "friends": frozenset(
        {
            Action.ADD_FRIEND,
            Action.REMOVE_FRIEND,
            Action.UPDATE_FRIEND,
            Action.SET_FRIEND_PERMISSION,
        }
    ),
}


@dataclass(frozen=True)
class Targeting:
    """--target/--exclude globs on uids (on role ids for role changes) and --only
    kinds of change."""

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    only: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.include or self.exclude or self.only)

    def wants(self, change: Change) -> bool:
        if change.action in KINDS["friends"] and change.target:
            # A friendship is mutual and planned once for both users, so it is either
            # user's: kept when either is targeted, unless either is excluded.
            ends = (change.uid, change.target)
            if not any(map(self._included, ends)) or any(map(self._excluded, ends)):
                return False
        elif not self.wants_uid(change.uid):
            return False
        return not self.only or any(change.action in KINDS[kind] for kind in self.only)

    def wants_uid(self, uid: str) -> bool:
        return self._included(uid) and not self._excluded(uid)

    def _included(self, uid: str) -> bool:
        return not self.include or any(fnmatch.fnmatchcase(uid, g) for g in self.include)

    def _excluded(self, uid: str) -> bool:
        return any(fnmatch.fnmatchcase(uid, g) for g in self.exclude)

    def wants_user(self, uid: str) -> bool:
        """A whole user (drift's unowned and extra users): a change of kind 'users'."""
        return self.wants_uid(uid) and (not self.only or "users" in self.only)

    def wants_role(self, name: str) -> bool:
        """A whole role (drift's extra roles): a change of kind 'roles'."""
        return self.wants_uid(name) and (not self.only or "roles" in self.only)

    def unmatched(self, uids: Iterable[str]) -> tuple[str, ...]:
        """The --target globs that match none of ``uids`` (a typo targets nothing)."""
        left = list(self.include)
        for uid in uids:
            if not left:
                break
            left = [glob for glob in left if not fnmatch.fnmatchcase(uid, glob)]
        return tuple(left)

    def describe(self) -> dict[str, list[str]]:
        found = {"target": list(self.include), "exclude": list(self.exclude), "only": list(self.only)}
        return {key: value for key, value in found.items() if value}


@dataclass(frozen=True)
class Options:
    allow_takeover: bool = False
    targeting: Targeting = field(default_factory=Targeting)
    now: Callable[[], datetime] = lambda: datetime.now(UTC)
    refuse_unmatched_targets: bool = False
    """A --target that matches no uid is an error (apply), not a warning (plan, drift)."""
    refresh: Refresh = "full"
    """``changed``: trust users whose recorded digest matches (`chatroster.refresh`)."""


def unmatched_targets(manifest: Manifest, live: State, targeting: Targeting) -> tuple[str, ...]:
    """One message per --target glob that matches no declared or live uid."""
    uids = _uids(manifest.desired) | _uids(live)
    return tuple(f"--target {glob!r} matches no declared or live uid" for glob in targeting.unmatched(uids))


def _uids(state: State) -> set[str]:
    """What a --target glob may match: uids, and role ids (for role changes)."""
    return set(state.users) | set(state.bans or ()) | set(state.roles or ())


def scope_for(manifest: Manifest) -> Scope:
    """The least live state the plan needs: what the manifest declares or may prune."""
    desired = manifest.desired
    users = desired.users.values()
    extra = set(desired.bans or ())
    for user in users:
        extra |= user.blocklist or frozenset()
        extra |= user.whitelist or frozenset()
        extra |= frozenset(user.friends or ())
    return Scope(
        uids=frozenset(desired.users),
        owner=manifest.owner,
        blocklists=frozenset(u.uid for u in users if u.blocklist is not None),
        whitelists=frozenset(u.uid for u in users if u.whitelist is not None or u.whitelist_mode is not None),
        friends=frozenset(u.uid for u in users if u.friends is not None),
        friend_permissions=frozenset(u.uid for u in users if u.friend_permission is not None),
        owned=manifest.policy.prune != "none" or desired.bans is not None,
        bans=desired.bans is not None,
        extra_uids=frozenset(extra - set(desired.users)),
    )


def read_live(
    manifest: Manifest,
    provider: Provider,
    *,
    everything: bool = False,
    owned: bool = False,
    uids: frozenset[str] = frozenset(),
    refresh: Refresh = "full",
) -> State:
    """Live state for the manifest; ``owned`` adds every owned user (drift),
    ``everything`` every user the platform can list (export), and ``uids`` users the
    platform cannot list (Nexconn) that the caller names. With ``refresh`` ``changed``,
    users whose recorded digest matches their declaration are not read per user, and
    their unread fields are taken from the declaration (`chatroster.refresh`)."""
    scope = scope_for(manifest)
    changed = refresh == "changed" and provider.capabilities.refresh_changed and not everything
    if changed:
        # A uid a saved plan names beyond the manifest is read fully: never trusted.
        scope = replace(scope, digests=Awaited(manifest, leave_out=uids))
    if owned:
        scope = replace(scope, owned=True)
    if everything:
        scope = replace(scope, everything=True, owned=True, bans=True)
    if uids:
        scope = replace(scope, uids=scope.uids | uids)
    live = provider.read(scope)
    return trusting(manifest.desired, live) if changed else live


def make_plan(manifest: Manifest, provider: Provider, options: Options, live: State | None = None) -> Plan:
    """Read live state (unless given) and plan; targeting filters the changes."""
    if live is None:
        live = read_live(manifest, provider, refresh=options.refresh)
    with paused_collection():  # a change or more per user: see `chatroster.bulk`
        return _plan(manifest, provider, options, live)


def _plan(manifest: Manifest, provider: Provider, options: Options, live: State) -> Plan:
    _refuse_unknown_roles(manifest, live)
    ctx = Context(
        owner=manifest.owner,
        policy=manifest.policy,
        capabilities=CAPABILITIES[manifest.provider.type],
        now=options.now(),
        allow_takeover=options.allow_takeover,
    )
    result = plan(manifest.desired, live, ctx)
    if options.targeting:
        result = _targeted(result, options, unmatched_targets(manifest, live, options.targeting))
    records, stale = to_record(
        manifest,
        live,
        result,
        provider.capabilities,
        options.targeting.wants_uid,
        only=bool(options.targeting.only),
    )
    return result.evolve(
        # The local platform reads everything cheaply: its plans are always full.
        refresh=options.refresh if provider.capabilities.refresh_changed else "full",
        trusted=len(live.trusted),
        records=records,
        stale=stale,
        provider=provider.identity(),
        manifest_digest=manifest.digest,
        manifest_files=tuple(str(Path(source).resolve()) for source in manifest.entry or manifest.sources),
        fingerprints=fingerprints(result.changes, live, manifest.owner),
    )


def _refuse_unknown_roles(manifest: Manifest, live: State) -> None:
    """A user given a role that nothing declares and the platform lacks: refused with
    where it is written, before anything is planned (apply would fail on it)."""
    unknown = unknown_roles(manifest.desired, live)
    if not unknown:
        return
    declared = sorted(manifest.desired.roles or ())
    hint = (
        f"declare it under roles: (declared: {', '.join(declared)})"
        if declared
        else "declare it under roles:"
    )
    hint += ", or use the built-in role 'default' or a role that exists on the platform"
    problems = [
        Problem(
            *manifest.locate(("users", uid, "role")),
            f"users.{uid}.role",
            f"{uid}: the role '{role}' is not declared in roles, is not 'default', and "
            f"does not exist on the {label(manifest)} platform",
            hint,
        )
        for uid, role in unknown
    ]
    raise ManifestError(problems)


def _targeted(result: Plan, options: Options, unmatched: tuple[str, ...]) -> Plan:
    """The plan within --target/--exclude/--only; a target that matches nothing is a
    warning of the plan, or refused before anything is applied."""
    if unmatched and options.refuse_unmatched_targets:
        raise ChatrosterError(
            "; ".join(unmatched) + ": nothing was applied; check the "
            "pattern (a glob on whole uids, such as 'u00*')"
        )
    targeting = options.targeting
    kept, unmet = _with_prerequisites(
        tuple(c for c in result.changes if targeting.wants(c)), result.changes, targeting
    )
    # A refused user outside the targets is not this run's business either.
    refused = tuple(uid for uid in result.conflicts if targeting.wants_uid(uid))
    return result.evolve(
        changes=kept,
        targeting=targeting.describe(),
        conflicts=refused,
        warnings=result.warnings + unmatched + unmet,
    )


def _with_prerequisites(
    kept: tuple[Change, ...], planned: Sequence[Change], targeting: Targeting
) -> tuple[tuple[Change, ...], tuple[str, ...]]:
    """``kept`` without the changes whose user (or target user) the platform does not
    have yet and whose creation or reactivation the targeting leaves out: a block for a
    user that is still deactivated, or not created, would fail on the platform, so the
    plan would show what apply cannot do. Says which users, and how to include them."""
    chosen = {change.key for change in kept}
    missing = {
        change.uid: change.action
        for change in planned
        if change.action in EXISTENCE and change.key not in chosen
    }
    if not missing:
        return kept, ()
    left: dict[str, list[Change]] = {}
    for change in kept:
        if change.action in KINDS["roles"]:
            continue  # a role's name is not a uid
        needed = next((name for name in (change.uid, change.target) if name in missing), None)
        if needed is not None:
            left.setdefault(needed, []).append(change)
    if not left:
        return kept, ()
    dropped = {change.key for changes in left.values() for change in changes}
    widen = targeting.only and "users" not in targeting.only
    how = "add --only users" if widen else "widen --target/--exclude"
    warnings = tuple(
        f"{len(changes)} change(s) left out ({', '.join(sorted({c.action.value for c in changes}))}): "
        f"they need {missing[uid].value} {uid}, which this targeting leaves out; {how} to include it"
        for uid, changes in sorted(left.items())
    )
    return tuple(c for c in kept if c.key not in dropped), warnings


def label(manifest: Manifest) -> str:
    """How messages name the platform: ``[local]``, ``[cometchat]`` ..."""
    return manifest.provider.type
