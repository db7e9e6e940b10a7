"""The local provider: the embedded SQLite platform (`chatroster.store`), the default.

A thin translator like every provider: `read` turns store rows into the neutral model,
and each write method carries out one batch of changes of one action inside one store
transaction, so a crash never leaves half a batch. Changes naming a user that does not
exist are collected and reported together (`PartialFailure`) while the rest of the
batch is committed, so one stale change never holds back the others.

Opened read-only (plan, drift, export), it never creates or changes a file: a store
that does not exist yet reads as an empty platform, and `notes` says so. Opened for
apply, it holds the store's `ApplyLock` until it is closed.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from ..bulk import paused_collection
from ..changes import Change
from ..errors import ProviderError
from ..masking import process_mask_key
from ..model import USER_FIELDS, ProviderConfig, State, User, utc
from ..store import ApplyLock, Clock, NotAStoreError, Store, StoreError, failure
from . import CAPABILITIES, local_roles
from .base import Provider, Scope
from .batches import raise_if, reason
from .local_friends import LocalFriends

DEFAULT_PATH = ".chatroster/local.db"

#: Fields a create or update change may carry besides the profile fields.
_STATE_FIELDS = ("whitelist_mode", "tokens_valid_after", "owner")

#: One change's outcome: ``None`` when done, else why it failed.
Outcome = str | None

#: Reads of a store at rest that another process may write meanwhile (see
#: `Store.changed_since_open`): after this many, the read gives up.
_READ_ATTEMPTS = 3

#: The smallest chunk of uids a read asks the store for at once (progress is reported
#: per chunk): measured at 100k users, chunks of this size cost no more than one query.
_READ_CHUNK = 10_000

_NOT_A_STORE_HINT = (
    "; set provider.path in the manifest to a chatroster store, or to a new file to create one there"
)


class LocalProvider(LocalFriends, Provider):
    type = "local"
    capabilities = CAPABILITIES["local"]

    def __init__(
        self,
        path: str | Path,
        clock: Clock = time.time,
        *,
        writable: bool = True,
        lock_timeout: timedelta | None = None,
    ) -> None:
        """``writable``: False for commands that only read (see `open_local`).
        ``lock_timeout``: take the apply lock, waiting up to this long for another
        apply to finish; ``None``: no lock (a program or test that owns its store)."""
        self.path = Path(path).resolve()
        self.writable = writable
        self._clock = clock
        self._apply_lock = None if lock_timeout is None else self._take_lock(lock_timeout)
        try:
            self.store = _open_store(self.path, clock, writable)
        except BaseException:
            self._release_lock()
            raise

    def _take_lock(self, timeout: timedelta) -> ApplyLock:
        # A file that is not a store is refused before a lock file is put beside it.
        _open_store(self.path, self._clock, writable=False).close()
        try:
            return ApplyLock.take(self.path, timeout)
        except StoreError as exc:
            raise _local(exc) from None

    def _release_lock(self) -> None:
        if self._apply_lock is not None:
            self._apply_lock.release()

    def identity(self) -> dict[str, Any]:
        return {"type": self.type, "path": str(self.path)}

    @property
    def notes(self) -> tuple[str, ...]:
        """What the user should know about this store before reading a plan of it."""
        if self.store.exists:
            return ()
        what = "is empty" if self.path.exists() else "does not exist yet"
        note = f"{self.path} {what}: planning against an empty local platform; apply creates it"
        return (note,)

    def mask_key(self) -> bytes:
        """The key for masks in printed output: the store's own random key, or, until
        apply has made one, a random key for this process (`masking.mask_key`)."""
        with self._sqlite_errors():
            return self.store.mask_key() or process_mask_key()

    def close(self) -> None:
        try:
            self.store.close()
        finally:
            self._release_lock()

    @contextmanager
    def _sqlite_errors(self, then: str = "") -> Iterator[None]:
        """SQLite errors as the `StoreError` they stand for (damaged, busy...), never
        a traceback; ``then`` says what became of the work."""
        try:
            yield
        except sqlite3.Error as exc:
            raise _local(failure(self.path, exc), then) from None

    # ------------------------------------------------------------------------ read

    def read(self, scope: Scope) -> State:
        for _ in range(_READ_ATTEMPTS):
            try:
                with self._sqlite_errors(), paused_collection():  # see `chatroster.bulk`
                    state = self._read(scope)
            except StoreError:
                if not self.store.changed_since_open():
                    raise
            else:
                if not self.store.changed_since_open():
                    return state
            self._reopen()  # written meanwhile: read it again, as it is now
        raise StoreError(
            f"[local] {self.path} changed while it was read, {_READ_ATTEMPTS} times (an "
            "apply or the emulator writing to it); run the command again"
        )

    def _reopen(self) -> None:
        self.store.close()
        self.store = _open_store(self.path, self._clock, self.writable)

    def _read(self, scope: Scope) -> State:
        if scope.everything:  # export: every user, with every list
            users = self.store.all_users()
            self.tally("users", len(users)).add(len(users))
            self._fill_relations(users, "blocks", "blocklist", None)
            self._fill_relations(users, "whitelist", "whitelist", None)
            self._fill_friends(users, None, None)
        else:
            users = self._get_users(self._uids(scope))
            # Relations are read only where the manifest manages them: ``None`` tells the
            # planner "unknown", and reading every user's lists would cost time for nothing.
            self._fill_relations(users, "blocks", "blocklist", scope.blocklists)
            self._fill_relations(users, "whitelist", "whitelist", scope.whitelists)
            self._fill_friends(users, scope.friends, scope.friend_permissions)
        # Bans and roles are one small query each, so they are always read.
        return State(users=users, bans=self.store.bans(), roles=self.store.roles())

    def _get_users(self, uids: frozenset[str]) -> dict[str, User]:
        """The users of ``uids`` that exist, read in about ten chunks for progress: no
        smaller than `_READ_CHUNK`, so that a large read costs no more than in one go."""
        ordered = sorted(uids)
        size = max(_READ_CHUNK, -(-len(ordered) // 10))
        tally = self.tally("users", len(ordered))
        users: dict[str, User] = {}
        for start in range(0, len(ordered), size):
            chunk = ordered[start : start + size]
            users.update(self.store.get_users(frozenset(chunk)))
            tally.add(len(chunk))
        return users

    def _uids(self, scope: Scope) -> frozenset[str]:
        uids = scope.uids | scope.extra_uids
        return uids | self.store.owned_uids(scope.owner) if scope.owned else uids

    def _fill_relations(
        self, users: dict[str, User], table: str, field: str, managed: frozenset[str] | None
    ) -> None:
        """Set ``field`` on the ``managed`` users (``None``: on all of them) from ``table``."""
        wanted = list(users) if managed is None else [uid for uid in managed if uid in users]
        tally = self.tally(f"{field}s", len(wanted))
        found = self.store.relations(table, None if managed is None else wanted)
        tally.add(len(wanted))
        for uid in wanted:
            # These users were built a moment ago and nothing else holds them yet, so
            # the field is set in place: `User.evolve` would rebuild and re-normalise
            # every field, about 2 s more per list when reading 100k users.
            object.__setattr__(users[uid], field, frozenset(found.get(uid, ())))

    # ----------------------------------------------------------------------- write

    def create_users(self, changes: Sequence[Change]) -> None:
        # One lookup and one insert for the whole batch: two queries per user were most
        # of the store's time when applying 100k new users. The lookup runs in the
        # batch's transaction, so no other writer can add one of these uids before the
        # insert (which would fail the whole batch on the uid's UNIQUE constraint).
        existing: dict[str, User] = {}
        new: dict[str, User] = {}
        self._each(
            changes,
            lambda change: self._create(change, existing.get(change.uid), new),
            first=lambda: existing.update(self.store.get_users(c.uid for c in changes)),
            then=lambda: self.store.insert_users(new.values()),
        )

    def adopt_users(self, changes: Sequence[Change]) -> None:
        self._each(changes, self._adopt)

    def update_users(self, changes: Sequence[Change]) -> None:
        self._each(changes, self._update)

    def reactivate_users(self, changes: Sequence[Change]) -> None:
        self._each(changes, lambda change: self._set_active(change, True))

    def deactivate_users(self, changes: Sequence[Change]) -> None:
        self._each(changes, lambda change: self._set_active(change, False))

    def delete_users(self, changes: Sequence[Change]) -> None:
        self._each(changes, self._delete)

    def ban_users(self, changes: Sequence[Change]) -> None:
        self._each(changes, self._ban)

    def unban_users(self, changes: Sequence[Change]) -> None:
        self._each(changes, self._unban)

    def add_blocks(self, changes: Sequence[Change]) -> None:
        self._each(changes, lambda change: self._add_relation("blocks", change))

    def remove_blocks(self, changes: Sequence[Change]) -> None:
        self._each(changes, lambda change: self._remove_relation("blocks", change))

    def add_whitelist(self, changes: Sequence[Change]) -> None:
        self._each(changes, lambda change: self._add_relation("whitelist", change))

    def remove_whitelist(self, changes: Sequence[Change]) -> None:
        self._each(changes, lambda change: self._remove_relation("whitelist", change))

    def set_whitelist_modes(self, changes: Sequence[Change]) -> None:
        self._each(changes, self._set_whitelist_mode)

    def expire_tokens(self, changes: Sequence[Change]) -> None:
        self._each(changes, self._expire_tokens)

    def create_roles(self, changes: Sequence[Change]) -> None:
        self._each(changes, lambda change: local_roles.create(self.store, change))

    def update_roles(self, changes: Sequence[Change]) -> None:
        self._each(changes, lambda change: local_roles.update(self.store, change))

    def delete_roles(self, changes: Sequence[Change]) -> None:
        self._each(changes, lambda change: local_roles.delete(self.store, change))

    def _each(
        self,
        changes: Sequence[Change],
        write: Callable[[Change], Outcome],
        first: Callable[[], None] | None = None,
        then: Callable[[], None] | None = None,
    ) -> None:
        """Write a batch in one transaction; report the changes that failed together.

        A ValueError is a bad value in one change. Each write translates its change
        before touching the store, so such a change fails alone with nothing written.
        ``first`` and ``then`` run in the same transaction before the first write (a
        batched lookup) and after the last (a batched insert).
        """
        if not self.writable:
            raise ProviderError(f"[local] {self.path} was opened read-only; only apply writes to it")
        failed: dict[str, str] = {}
        with self._transaction():
            if first is not None:
                first()
            for change in changes:
                try:
                    problem = write(change)
                except ValueError as exc:
                    problem = reason(exc)
                if problem is not None:
                    failed[change.key] = problem
            if then is not None:
                then()
        raise_if(failed)

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        written = "; nothing in this batch was written"
        with self._sqlite_errors(then=written), self.store.transaction():
            yield

    # One function per action; each returns why its change failed, or None.

    def _create(self, change: Change, current: User | None, new: dict[str, User]) -> Outcome:
        fields, active = _user_fields(change.after)
        if change.uid in new:
            return f"user '{change.uid}' is created twice in this batch"
        if current is None:
            new[change.uid] = User(uid=change.uid, active=active, **fields)  # inserted by `then`
            return None
        if current.owner != fields.get("owner"):
            return (
                f"user '{change.uid}' already exists (owner {current.owner or 'none'}); "
                "run plan again to adopt or take it over"
            )
        # Created by an earlier, interrupted apply of this manifest: converge instead.
        return self._write_fields(change.uid, fields, active)

    def _adopt(self, change: Change) -> Outcome:
        return self._write_fields(change.uid, {"owner": _after(change, "owner")}, None)

    def _update(self, change: Change) -> Outcome:
        fields, active = _user_fields(change.after)
        return self._write_fields(change.uid, fields, active)

    def _write_fields(self, uid: str, fields: Mapping[str, Any], active: bool | None) -> Outcome:
        if not self.store.update_user(uid, fields):
            return _missing(uid)
        if active is not None:
            self.store.set_active([uid], active)
        return None

    def _set_active(self, change: Change, active: bool) -> Outcome:
        return None if self.store.set_active([change.uid], active) else _missing(change.uid)

    def _delete(self, change: Change) -> Outcome:
        return None if self.store.delete_users([change.uid]) else _missing(change.uid)

    def _ban(self, change: Change) -> Outcome:
        until = _time(change.after.get("until"), "until")
        return self._if_exists([change.uid], lambda: self.store.ban([change.uid], until))

    def _unban(self, change: Change) -> Outcome:
        return self._if_exists([change.uid], lambda: self.store.unban([change.uid]))

    def _add_relation(self, table: str, change: Change) -> Outcome:
        pair = (change.uid, _target(change))
        return self._if_exists(pair, lambda: self.store.add_relations(table, [pair]))

    def _remove_relation(self, table: str, change: Change) -> Outcome:
        # Only the owner of the list must exist: removing an entry is always safe.
        pair = (change.uid, _target(change))
        return self._if_exists([change.uid], lambda: self.store.remove_relations(table, [pair]))

    def _set_whitelist_mode(self, change: Change) -> Outcome:
        mode = bool(_after(change, "whitelist_mode"))
        return self._write_fields(change.uid, {"whitelist_mode": mode}, None)

    def _expire_tokens(self, change: Change) -> Outcome:
        cutoff = _time(_after(change, "tokens_valid_after"), "tokens_valid_after")
        if cutoff is None:
            raise ValueError("tokens_valid_after: expire_tokens needs a time")
        problem = self._write_fields(change.uid, {"tokens_valid_after": cutoff}, None)
        if problem is None:
            self.store.delete_tokens_before(change.uid, cutoff)
        return problem

    def _if_exists(self, uids: Sequence[str], write: Callable[[], None]) -> Outcome:
        for uid in uids:
            if not self.store.has_user(uid):
                return _missing(uid)
        write()
        return None


def open_local(
    config: ProviderConfig, *, writable: bool = False, lock_timeout: timedelta = timedelta(0)
) -> LocalProvider:
    """The local provider a manifest's ``provider`` section names (path relative to it).

    Read-only unless ``writable`` (apply), which also takes the apply lock, waiting up
    to ``lock_timeout`` for another apply to finish.
    """
    path = Path(config.settings.get("path", DEFAULT_PATH))
    if not path.is_absolute():
        path = Path(config.base_dir) / path
    return LocalProvider(path, writable=writable, lock_timeout=lock_timeout if writable else None)


def _open_store(path: Path, clock: Clock, writable: bool) -> Store:
    try:
        return Store(path, clock=clock, writable=writable)
    except StoreError as exc:
        raise _local(exc) from None


def _local(exc: StoreError, then: str = "") -> StoreError:
    """``exc`` said as the local provider's, with what to do about provider.path for a
    file that is not a store, and ``then``; of the same class, so callers can tell
    them apart."""
    hint = _NOT_A_STORE_HINT if isinstance(exc, NotAStoreError) else ""
    return type(exc)(f"[local] {exc}{hint}{then}")


def _user_fields(after: Mapping[str, Any]) -> tuple[dict[str, Any], bool | None]:
    """A change's ``after`` as store fields, and the wanted ``active`` (``None``: as is).

    Everything is translated before anything is written, so that a bad value fails its
    change alone and never leaves it half applied.
    """
    fields: dict[str, Any] = {}
    for name, value in after.items():
        if name == "tokens_valid_after":
            fields[name] = _time(value, name)
        elif name in USER_FIELDS or name in _STATE_FIELDS:
            fields[name] = value
        elif name != "active":
            raise ValueError(f"'{name}' is not a user field the local platform stores")
    active = after.get("active")
    return fields, None if active is None else bool(active)


def _time(value: Any, name: str) -> datetime | None:
    """An ISO-8601 time from a change, in UTC; ``None`` and "forever" mean no time.

    Times without an offset are UTC, as everywhere in chatroster (not the local zone).
    """
    if value is None or value == "forever":
        return None
    try:
        return utc(datetime.fromisoformat(str(value)))
    except ValueError:
        raise ValueError(f"{name}: {value!r} is not an ISO-8601 time") from None


def _after(change: Change, key: str) -> Any:
    if key not in change.after:
        raise ValueError(f"the change has no '{key}' value")
    return change.after[key]


def _target(change: Change) -> str:
    if not change.target:
        raise ValueError("the change names no target user")
    return change.target


def _missing(uid: str) -> str:
    return f"user '{uid}' does not exist"
