"""``--refresh changed``: plans that read only what may have changed.

Design
======

**The digest.** At apply, chatroster records with each user's ownership marker a
digest of the user's declaration as applied (`digest`): every field the manifest
declares for the user that a plan compares (`USER_FIELDS`, ``active``, blocklist,
whitelist and its mode, friends, friend permission, token watermark) and the
manifest's ``owner``, as canonical JSON (sorted keys, no spaces, UTF-8) behind a
version prefix (``v1:``), hashed with SHA-256 and cut to 24 hex digits. It depends on
the declaration alone, never on the order of keys, tags or lists, nor on the run, so
an unchanged declaration gives the same digest on every machine; a new version prefix
(when what the digest covers changes) makes every recorded digest stale at once,
which is safe: stale means "read fully". Where it is kept: CometChat, ``digest`` in
the ``@chatroster`` metadata marker; Nexconn, the hosted-profile ext field
``ext_chatrosterDigest`` (which has to be declared in the console like the others).

**Reading with ``changed``.** The provider always reads the bulk lists (Nexconn:
soft-deleted users, bans when managed, and every hosted profile, where the digests
are; CometChat: the user pages), then skips the per-user reads of each declared user
whose recorded digest equals the digest of its declaration now (Nexconn: ``user/get``,
``tag/batch/get``, blocklist, whitelist, friends, friend permission; CometChat: the
blocklist). Such a user is *trusted*: the fields not read for it are taken from its
declaration (`trusting`), so it plans nothing for them. What the bulk lists show is
still compared (Nexconn: hosted profile, owner, token watermark, active; CometChat:
every field but the blocklist), because it costs nothing more. A change made outside
the manifest to what is not read (a name set with ``user/update``, a tag, a block
made in an app) is therefore missed by ``changed`` and found by ``full`` and
``drift`` (which is always full): ``changed`` is for pull requests, ``full`` for
merges and schedules. The local platform reads everything cheaply; there ``changed``
is accepted and is the same as ``full``.

**Writing the digest, never claiming more than was done.** A digest is recorded only
for a user whose every change of this apply was applied (a failed or not attempted
change of the user, or of a friendship it is part of, leaves it out), as soon as
the last of them was applied, while the apply goes on (`Digests`); an interrupted
apply records no more (those recorded before had every change applied). Where a
user's one change of the apply is a single write that carries the marker, the digest
rides in it (`carry`, `Provider.carry_digests`): CometChat's create (without a token
flush or a deactivation after it), update and adopt; Nexconn's create (not deactivated
after it; one with tags or a whitelist mode writes its ``profile/set`` after them) and
adopt. The write and the digest then succeed or fail together, and nothing of the
user's is written after it. Otherwise the vendors' lanes run a user's
changes on several endpoints at once, so no write of the user's is known to be its
last: the digest is one marker write after the last of them (CometChat: a ``PUT /users/{uid}`` of
the metadata with the marker; Nexconn: the hosted-profile read-modify-write,
``profile/batch/get`` per 20 and ``profile/set`` per user, which also refreshes the
copy of the name and avatar kept there). A user that is about to change and holds a
digest of an older declaration has it removed first (`clear_stale`, the same write;
not needed when its one write carries the new digest), so that a crashed or failed
apply never leaves a digest that a later revert of the manifest would match while the
platform holds half of the newer one.

**Users with nothing to change.** Every apply (full or changed) records the digest of
each declared user it read fully and found in sync or brought in sync, whose recorded
digest is missing or stale: the first full apply after an upgrade (or after a user
was edited outside chatroster and put back) makes the next ``changed`` plan cheap. The
plan says so ("records the applied state of N users") because what plan shows is
all apply may do; it is not a change: ``--detailed-exitcode`` still exits 0 when only
digests are to be recorded. Left out: users declared ``active: false`` on a platform
that cannot edit deactivated users (both vendors), users whose lists could not be read
(a deactivated user being reactivated), users refused for another owner, plans limited
by ``--only`` (only part of the declaration is applied), and seed mode (it never
brings users to their declaration).

**Saved plans.** A saved plan records its refresh mode; ``apply --plan`` reads and
plans again with the same mode, and records digests only for users all of whose fresh
changes it applies.
"""

from __future__ import annotations

import copy
import hashlib
import json
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from .apply import ApplyResult, Record
from .changes import Action, Change
from .errors import ApplyError, ChatrosterError
from .model import USER_FIELDS, Manifest, State, User, thaw, utc
from .plan import Plan
from .providers.base import Capabilities, DigestEntry, Provider

Refresh = Literal["full", "changed"]
REFRESH_MODES: tuple[Refresh, ...] = ("full", "changed")

DIGEST_VERSION = "v1"
"""Bumped when what the digest covers changes: every recorded digest is then stale."""

_FRIEND_ACTIONS = frozenset(
    {Action.ADD_FRIEND, Action.REMOVE_FRIEND, Action.UPDATE_FRIEND, Action.SET_FRIEND_PERMISSION}
)
_LISTS = ("blocklist", "whitelist", "whitelist_mode", "friends", "friend_permission")

_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode


_MEMO_SIZE = 200_000
_memo: dict[int, tuple[User, str, str]] = {}
"""Digests computed, by the identity of the declared user (kept, so that the identity
stays its own): a plan computes each twice (what to trust, what to record)."""


def digest(user: User, owner: str) -> str:
    """The digest of ``user``'s declaration under ``owner``: ``v1:`` and 24 hex digits."""
    hit = _memo.get(id(user))
    if hit is not None and hit[0] is user and hit[1] == owner:
        return hit[2]
    value = _digest(user, owner)
    if len(_memo) >= _MEMO_SIZE:
        _memo.clear()
    _memo[id(user)] = (user, owner, value)
    return value


def _digest(user: User, owner: str) -> str:
    data = {name: thaw(getattr(user, name)) for name in USER_FIELDS}
    data.update(
        owner=owner,
        active=user.active is not False,
        blocklist=None if user.blocklist is None else sorted(user.blocklist),
        whitelist=None if user.whitelist is None else sorted(user.whitelist),
        whitelist_mode=user.whitelist_mode,
        tokens_valid_after=_iso(user),
        friends=thaw(user.friends),
        friend_permission=user.friend_permission,
    )
    text = f"{DIGEST_VERSION}\n{_JSON(data)}"
    return f"{DIGEST_VERSION}:{hashlib.sha256(text.encode('utf-8')).hexdigest()[:24]}"


def _iso(user: User) -> str | None:
    return None if user.tokens_valid_after is None else utc(user.tokens_valid_after).isoformat()


def declared_digests(manifest: Manifest) -> dict[str, str]:
    """The digest of every declared user's declaration."""
    return {uid: digest(user, manifest.owner) for uid, user in manifest.desired.users.items()}


class Awaited(Mapping[str, str]):
    """`declared_digests`, computed on a thread of its own while the provider reads.

    The providers look at the digests only once their bulk lists are in, and reading
    those is mostly waiting on the network (and, on Nexconn, on the rate limit): the
    tenth of a second that 10,000 digests take is spent in that wait. A read blocks on
    the first look until they are ready; the thread's error, if any, is raised there.
    """

    def __init__(self, manifest: Manifest, leave_out: frozenset[str] = frozenset()) -> None:
        self._done = threading.Event()
        self._digests: dict[str, str] = {}
        self._error: BaseException | None = None

        def compute() -> None:
            try:
                digests = declared_digests(manifest)
                self._digests = {uid: d for uid, d in digests.items() if uid not in leave_out}
            except BaseException as exc:  # handed to the reader, which raises it
                self._error = exc
            finally:
                self._done.set()

        threading.Thread(target=compute, name="digests", daemon=True).start()

    def _ready(self) -> dict[str, str]:
        self._done.wait()
        if self._error is not None:
            raise self._error
        return self._digests

    def __getitem__(self, uid: str) -> str:
        return self._ready()[uid]

    def __iter__(self) -> Iterator[str]:
        return iter(self._ready())

    def __len__(self) -> int:
        return len(self._ready())


def trusting(desired: State, live: State) -> State:
    """``live`` with each trusted user's unread fields taken from its declaration."""
    if not live.trusted:
        return live
    users = dict(live.users)
    for uid, unread in live.trusted.items():
        want, have = desired.users.get(uid), users.get(uid)
        if want is None or have is None:
            continue
        taken = {name: getattr(want, name) for name in unread if getattr(want, name) is not None}
        if taken:
            users[uid] = _with(have, taken)
    return replace(live, users=users)


def _with(user: User, fields: Mapping[str, object]) -> User:
    """``user`` with ``fields`` taken from another `User`: already normalised, so the
    copy skips `User.__post_init__` (a tenth of a --refresh changed plan of 10k users)."""
    copied = copy.copy(user)
    for name, value in fields.items():
        object.__setattr__(copied, name, value)
    return copied


# ------------------------------------------------------------------------ planning


def to_record(
    manifest: Manifest,
    live: State,
    result: Plan,
    capabilities: Capabilities,
    wants_uid: Callable[[str], bool],
    only: bool,
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The users whose applied state apply records (missing or stale digest), and those
    of them that hold a stale digest (removed before their changes)."""
    if not capabilities.refresh_changed or manifest.policy.mode == "seed" or only:
        return (), ()
    conflicts = set(result.conflicts)
    records: list[str] = []
    stale: list[str] = []
    for uid, want in sorted(manifest.desired.users.items()):
        if uid in conflicts or not wants_uid(uid):
            continue
        if want.active is False and not capabilities.edit_inactive:
            continue  # the vendor refuses writes to a deactivated user
        have = live.users.get(uid)
        if have is not None and _unread_lists(want, have, live):
            continue  # not compared this run (a deactivated user's lists): not applied
        if not _reachable(want, manifest.desired, live, wants_uid):
            continue  # a relation the plan leaves out: the declaration is not reached
        recorded = None if have is None else have.digest
        if recorded == digest(want, manifest.owner):
            continue
        records.append(uid)
        if recorded:
            stale.append(uid)
    return tuple(records), tuple(stale)


def _reachable(want: User, desired: State, live: State, wants_uid: Callable[[str], bool]) -> bool:
    """Whether the plan can bring every relation of ``want`` to its declaration: each
    target exists or is created (the planner drops relations to unknown users, with a
    warning), and each friend is within the targets (a friendship is planned once,
    for both users)."""
    targets = (want.blocklist or frozenset()) | (want.whitelist or frozenset()) | set(want.friends or ())
    exists = all(t in live.users or t in desired.users for t in targets)
    return exists and all(wants_uid(friend) for friend in want.friends or ())


def _unread_lists(want: User, have: User, live: State) -> bool:
    return have.uid not in live.trusted and any(
        getattr(want, name) is not None and getattr(have, name) is None for name in _LISTS
    )


# ------------------------------------------------------------------------ applying


def touched(change: Change) -> Iterable[str]:
    """The users whose declared state ``change`` is part of (both ends of a friendship)."""
    yield change.uid
    if change.action in _FRIEND_ACTIONS and change.target:
        yield change.target


@dataclass
class Applied:
    """The changes apply reported applied, through its ``record`` hook (which it
    passes on to ``then``, the apply record, when given)."""

    then: Callable[[Change, str | None], None] | None = None
    keys: set[str] = field(default_factory=set)
    on_applied: Callable[[Change], None] | None = None

    def __call__(self, change: Change, why: str | None) -> None:
        if why is None:
            self.keys.add(change.key)
            if self.on_applied is not None:
                self.on_applied(change)
        if self.then is not None:
            self.then(change, why)


def carry(manifest: Manifest, result: Plan, provider: Provider) -> frozenset[str]:
    """The users whose digest the provider writes with their one change of this apply,
    that change being a single write (`Provider.carry_digests`): no write of their own."""
    changes: dict[str, list[Change]] = {}
    for change in result.changes:
        for uid in touched(change):
            changes.setdefault(uid, []).append(change)
    single = {
        uid: (changes[uid][0], digest(manifest.desired.users[uid], manifest.owner))
        for uid in result.records
        if len(changes.get(uid, ())) == 1 and uid in manifest.desired.users
    }
    return provider.carry_digests(single) if single else frozenset()


def clear_stale(result: Plan, provider: Provider, carried: frozenset[str] = frozenset()) -> None:
    """Remove the stale digest of each user about to change, before any change: a
    failed or interrupted apply then leaves no digest a reverted manifest would match.
    A digest ``carried`` by the user's one write is replaced by that write instead."""
    changing = {uid for change in result.changes for uid in touched(change)}
    clearing = [DigestEntry(uid, "") for uid in result.stale if uid in changing and uid not in carried]
    if not clearing:
        return
    failed = provider.record_digests(clearing)
    if failed:
        uid, why = sorted(failed.items())[0]
        raise ChatrosterError(
            f"[{provider.type}] could not remove the recorded state of {len(failed)} user(s) "
            f"before changing them ({uid}: {why}); nothing was applied; run apply again, or "
            "apply with --refresh full after fixing the cause"
        )


def recording(
    manifest: Manifest,
    result: Plan,
    provider: Provider,
    run: Callable[[Record], ApplyResult],
    *,
    then: Record | None,
    note: Callable[[str], None],
) -> ApplyResult:
    """Apply ``result`` (``run`` given the hook that sees each change settle, which
    passes it on to ``then``) between removing stale digests and recording new ones
    (`Digests`: each as soon as its user's changes were all applied), the new ones also
    when some changes failed (`ApplyError`); when the apply is interrupted, the
    digests not written yet are dropped."""
    carried = carry(manifest, result, provider)
    clear_stale(result, provider, carried)
    applied = Applied(then)
    digests = Digests(manifest, result, provider, carried) if result.records else None
    if digests is not None:
        applied.on_applied = digests.applied
    try:
        outcome = run(applied)
    except ApplyError:
        _record(result, provider, applied.keys, carried, digests, note)
        raise
    except BaseException:
        if digests is not None:
            digests.stop()
        raise
    _record(result, provider, applied.keys, carried, digests, note)
    return outcome


def _record(
    result: Plan,
    provider: Provider,
    applied: set[str],
    carried: frozenset[str],
    digests: Digests | None,
    note: Callable[[str], None],
) -> None:
    if digests is None:
        return
    digests.finish()
    recorded, failed = digests.recorded, digests.failed
    recorded += len(carried & {uid for c in result.changes if c.key in applied for uid in touched(c)})
    if recorded:
        note(f"Recorded the applied state of {recorded} user(s) (for --refresh changed).")
    if failed:
        uid, why = sorted(failed.items())[0]
        note(
            f"warning: [{provider.type}] could not record the applied state of {len(failed)} "
            f"user(s) ({uid}: {why}); the changes are made, and the next plan with --refresh "
            "changed reads these users fully"
        )


class Digests:
    """Records the digest of each user of ``result.records`` (not ``carried`` by its
    one write) as soon as every change naming it was applied, on a thread of its own,
    while the apply goes on: the marker writes run beside the changes instead of after
    the last of them. A user with a change that failed or was never attempted is never
    recorded; users with nothing to change are recorded from the start."""

    CHUNK = 20
    """Entries written together while the apply runs (Nexconn reads hosted profiles
    20 a call); what is left when it ends goes at once."""

    def __init__(self, manifest: Manifest, result: Plan, provider: Provider, carried: frozenset[str]) -> None:
        self.manifest, self.provider = manifest, provider
        self.pending: Counter[str] = Counter(uid for c in result.changes for uid in touched(c))
        self.wanted = {uid for uid in result.records if uid in manifest.desired.users and uid not in carried}
        self.queue = [uid for uid in result.records if uid in self.wanted and not self.pending[uid]]
        self.recorded = 0
        self.failed: dict[str, str] = {}
        self.error: BaseException | None = None
        self.finishing = self.stopped = False
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._write, daemon=True)
        self.thread.start()

    def applied(self, change: Change) -> None:
        """``change`` was applied: its users whose every change now was are queued."""
        with self.cond:
            for uid in touched(change):
                self.pending[uid] -= 1
                if not self.pending[uid] and uid in self.wanted:
                    self.queue.append(uid)
                    self.cond.notify()

    def finish(self) -> None:
        """Write what is queued and wait for it (the apply is over, or failed)."""
        with self.cond:
            self.finishing = True
            self.cond.notify()
        self.thread.join()
        if self.error is not None:
            raise self.error

    def stop(self) -> None:
        """Write nothing more (the apply was interrupted); a write in flight ends alone."""
        with self.cond:
            self.stopped = True
            self.cond.notify()

    def _write(self) -> None:
        while True:
            with self.cond:
                while not self.stopped and not self.finishing and len(self.queue) < self.CHUNK:
                    self.cond.wait()
                if self.stopped or (self.finishing and not self.queue):
                    return
                size = len(self.queue) if self.finishing else len(self.queue) // self.CHUNK * self.CHUNK
                uids, self.queue = self.queue[:size], self.queue[size:]
            users = self.manifest.desired.users
            entries = [DigestEntry(uid, digest(users[uid], self.manifest.owner), users[uid]) for uid in uids]
            try:
                failed = self.provider.record_digests(entries)
            except BaseException as exc:  # noqa: BLE001 - raised by `finish`, in the apply's thread
                self.error = exc
                return
            self.recorded += len(entries) - len(failed)
            self.failed.update(failed)


def recorded_uids(result: Plan, kept: Sequence[Change]) -> tuple[str, ...]:
    """``result.records`` less the users with a fresh change that ``kept`` leaves out
    (an edited saved plan): their declaration is not what apply reaches."""
    keys = {change.key for change in kept}
    left_out = {uid for c in result.changes if c.key not in keys for uid in touched(c)}
    return tuple(uid for uid in result.records if uid not in left_out)
