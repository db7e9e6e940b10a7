"""What each change of a plan must wait for, so that apply can run the rest at once.

`changes.ORDER` is one order that is always safe. Most of it is not needed: a tag write
for one user does not wait for a block of another. A vendor provider runs every action
on its own lane (each endpoint paced by its own limit), and a change waits only for:

- **existence**: a change to a user, or naming one as its target, waits for that user's
  create or reactivation in the same plan (a user exists before its tags, marker,
  relations and bans); a user's blocks (or whitelist entries) wait for all of their
  targets together, so that they still go in one call per user;
- **the same object**: changes of one user that write the same thing on the platform
  keep the plan's order: adopt, update, expire tokens (all rewrite the user's record or
  hosted profile); remove then add blocks; whitelist mode, then removals, then
  additions (removals first, so that a per-user cap is never hit half-way);
- **the end**: deactivating a user waits for every other change naming it (relations
  are settled first: some platforms drop or freeze a deactivated user's), and deleting
  it waits for that too.

An action this module does not classify (a newer one) keeps `ORDER` against every
other action: the plan is cut into segments at it, and a segment starts once the one
before it has settled. So adding an action to `ORDER` is always safe, and making it
concurrent is a decision taken here.

`waits` gives, for each change, the gates it waits on, and `members` which gates each
change counts towards: a gate opens once every member has settled. Counting gates
rather than listing edges keeps this linear in the plan (a user removing 3,000 blocks
and adding 3,000 would be 9 million edges).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field

from .changes import ORDER, Action, Change

EXISTENCE = frozenset({Action.CREATE_USER, Action.REACTIVATE_USER})
"""Changes after which a user exists (and is active) on the platform."""

#: Per user, the actions that write one object, in the order they must run.
SAME_OBJECT: tuple[tuple[Action, ...], ...] = (
    (Action.ADOPT_USER, Action.UPDATE_USER, Action.EXPIRE_TOKENS),
    (Action.REMOVE_BLOCK, Action.ADD_BLOCK),
    (Action.SET_WHITELIST_MODE, Action.REMOVE_WHITELIST, Action.ADD_WHITELIST),
    (Action.UNBAN_USER, Action.BAN_USER),
)
RELATIONS = frozenset({Action.ADD_BLOCK, Action.REMOVE_BLOCK, Action.ADD_WHITELIST, Action.REMOVE_WHITELIST})
"""Changes between a user and a target; a provider writes one user's in one call."""
ENDING = (Action.DEACTIVATE_USER, Action.DELETE_USER)
"""Deactivation, then deletion: after everything else that names the user."""

_CHAIN = {action: (chain, step) for chain in SAME_OBJECT for step, action in enumerate(chain)}
CLASSIFIED = EXISTENCE | frozenset(_CHAIN) | frozenset(ENDING)

Gate = Hashable


@dataclass
class Segment:
    """Changes that may run at once, subject to their gates."""

    changes: list[Change] = field(default_factory=list)
    waits: dict[str, list[Gate]] = field(default_factory=dict)
    """Per change key, the gates it waits on."""
    members: dict[str, list[Gate]] = field(default_factory=dict)
    """Per change key, the gates it counts towards."""


def segments(changes: Sequence[Change]) -> list[Segment]:
    """The plan (in plan order) cut at each unclassified action; each segment with the
    gates of its changes. Segments run one after the other."""
    cut: list[list[Change]] = []
    previous: Action | None = None
    for change in changes:
        barrier = None if change.action in CLASSIFIED else change.action
        if not cut or barrier != previous:
            cut.append([])
        previous = barrier
        cut[-1].append(change)
    return [_gated(part) for part in cut]


def _gated(changes: list[Change]) -> Segment:
    segment = Segment(changes=changes)
    creating = {change.uid: change.key for change in changes if change.action in EXISTENCE}
    gathering = {
        (change.uid, change.action)
        for change in changes
        if change.action in RELATIONS and change.target in creating
    }
    for change in changes:
        segment.waits[change.key] = _waits(change, gathering)
        segment.members.setdefault(change.key, []).extend(_members(change))
        target = change.target
        if change.action in RELATIONS and target is not None and target in creating:
            # The target's creation opens this user's whole action at once, rather
            # than each relation as its own target appears: a provider writes one
            # user's blocks in one call, which a split batch would make two.
            segment.members.setdefault(creating[target], []).append(("targets", change.uid, change.action))
    return segment


def _names(change: Change) -> tuple[str, ...]:
    if change.target is None or change.target == change.uid:
        return (change.uid,)
    return (change.uid, change.target)


def _members(change: Change) -> list[Gate]:
    action = change.action
    if action not in CLASSIFIED:
        return []
    gates: list[Gate] = []
    if action in EXISTENCE:
        gates.append(("exists", change.uid))
    if action in _CHAIN:
        chain, step = _CHAIN[action]
        gates.append(("object", change.uid, chain, step))
    if action is Action.DEACTIVATE_USER:
        gates.append(("deactivated", change.uid))
    if action not in ENDING:
        gates += [("named", uid) for uid in _names(change)]
    return gates


def _waits(change: Change, gathering: set[tuple[str, Action]]) -> list[Gate]:
    action = change.action
    if action not in CLASSIFIED or action in EXISTENCE:
        return []
    if action in ENDING:
        gates: list[Gate] = [("named", change.uid)]
        if action is Action.DELETE_USER:
            gates.append(("deactivated", change.uid))
        return gates
    gates = [("exists", change.uid)]
    if (change.uid, action) in gathering:
        gates.append(("targets", change.uid, action))  # its target among them, if created
    elif change.target is not None and change.target != change.uid:
        gates.append(("exists", change.target))
    chain, step = _CHAIN[action]
    gates += [("object", change.uid, chain, earlier) for earlier in range(step)]
    return gates


assert set(CLASSIFIED) <= set(ORDER), "every classified action is in changes.ORDER"
