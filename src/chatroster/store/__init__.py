"""The local platform's store: one SQLite file that holds the meaning.

The local provider writes to it directly; `chatroster emulator` serves the same file
over the Nexconn and CometChat HTTP APIs, whose modules only translate (the emulator's
own queries are in `chatroster.emulator.storage`). Every write runs inside
`Store.transaction`, so a crash never leaves half a change.

A store is opened writable (apply, the emulator: created and migrated as needed) or
read-only (plan, drift, export: nothing is ever created, migrated or changed). Either
way a file is checked before anything is written to it, so a file that is not a
chatroster store, or is damaged, is refused untouched. `ApplyLock` keeps applies to
one at a time.

    store.py    `Store`: users, bans, blocks, whitelists and tokens
    rows.py     ``users`` rows and `User` values, in mirrored pairs
    schema.py   the tables, version by version, and the migrations between them
    opening.py  opening a file writable or read-only, and checking it first
    lock.py     `ApplyLock`
    errors.py   `StoreError` and its kinds, and the messages for SQLite's errors
"""

from .errors import NotAStoreError, StoreError, StoreLockedError, failure
from .lock import ApplyLock
from .schema import MASK_KEY, SCHEMA_VERSION
from .store import Clock, Store

__all__ = [
    "MASK_KEY",
    "SCHEMA_VERSION",
    "ApplyLock",
    "Clock",
    "NotAStoreError",
    "Store",
    "StoreError",
    "StoreLockedError",
    "failure",
]
