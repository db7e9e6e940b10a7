"""Store files of every version chatroster has written keep working: a writable open
migrates an older file in place, keeping its data; a read-only open (plan, drift,
export) reads it as it is and changes nothing; a file from a newer chatroster is
refused untouched.

The version-1 files are made here with the DDL chatroster 1 shipped, not with the code
under test, so that a change to the migrations cannot hide a break with real files.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from pathlib import Path

import pytest

from chatroster.emulator import storage
from chatroster.model import User
from chatroster.store import SCHEMA_VERSION, NotAStoreError, Store, StoreError

#: The schema of store version 1, as chatroster wrote it (``store.py``, ``_SCHEMA``).
VERSION_1_DDL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS users (
    uid TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    avatar TEXT,
    link TEXT,
    role TEXT,
    status_message TEXT,
    metadata TEXT,
    tags TEXT NOT NULL DEFAULT '[]',
    profile TEXT,
    profile_version INTEGER NOT NULL DEFAULT 0,
    active INTEGER NOT NULL DEFAULT 1,
    deactivated_at INTEGER,
    whitelist_mode INTEGER NOT NULL DEFAULT 0,
    tokens_valid_after INTEGER,
    owner TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS users_owner ON users(owner);
CREATE TABLE IF NOT EXISTS bans (
    uid TEXT PRIMARY KEY,
    until INTEGER,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS blocks (
    uid TEXT NOT NULL, target TEXT NOT NULL, created_at INTEGER NOT NULL,
    PRIMARY KEY (uid, target)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS whitelist (
    uid TEXT NOT NULL, target TEXT NOT NULL, created_at INTEGER NOT NULL,
    PRIMARY KEY (uid, target)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tokens (
    token TEXT PRIMARY KEY, uid TEXT NOT NULL, created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS tokens_uid ON tokens(uid);
CREATE TABLE IF NOT EXISTS roles (
    role TEXT PRIMARY KEY, name TEXT NOT NULL, description TEXT, metadata TEXT,
    created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL
);
"""

#: The table chatroster 1's emulator made on first use, outside the schema.
VERSION_1_ROLE_SETTINGS = (
    "CREATE TABLE IF NOT EXISTS role_settings (role TEXT PRIMARY KEY, settings TEXT NOT NULL)"
)

MASK_KEY = "ab" * 32


def version_1_store(path: Path, *, role_settings: bool = False) -> Path:
    """A store as chatroster 1 left it after an apply: alice (owned), a block, a ban;
    with ``role_settings``, as its emulator left it after a role's settings were set."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(VERSION_1_DDL)
    db.execute("INSERT INTO meta VALUES ('schema', '1'), ('mask_key', ?)", (MASK_KEY,))
    db.execute(
        "INSERT INTO users (uid, name, tags, owner, created_at, updated_at)"
        " VALUES ('alice', 'Alice', '[\"staff\"]', 'ops', 1, 1), ('bob', 'Bob', '[]', NULL, 2, 2)"
    )
    db.execute("INSERT INTO blocks VALUES ('alice', 'bob', 3)")
    db.execute("INSERT INTO bans VALUES ('bob', NULL, 4)")
    if role_settings:
        db.execute(VERSION_1_ROLE_SETTINGS)
        db.execute("INSERT INTO role_settings VALUES ('default', '{\"listUsers\":\"all\"}')")
    db.close()
    return path


def recorded_version(path: Path) -> str:
    db = sqlite3.connect(path)
    try:
        return str(db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()[0])
    finally:
        db.close()


def tables(path: Path) -> set[str]:
    db = sqlite3.connect(path)
    try:
        return {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        db.close()


def fingerprint_of_directory(directory: Path) -> dict[str, tuple[str, int]]:
    return {
        str(path.relative_to(directory)): (
            hashlib.sha256(path.read_bytes()).hexdigest(),
            path.stat().st_mtime_ns,
        )
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def assert_alice_bob_and_their_relations(store: Store) -> None:
    users = store.all_users()
    assert set(users) == {"alice", "bob"}
    assert users["alice"].owner == "ops" and users["alice"].tags == ("staff",)
    assert store.relations("blocks") == {"alice": {"bob"}}
    assert set(store.bans()) == {"bob"}


# ------------------------------------------------------------------------ versions


def test_a_new_store_is_created_at_the_current_version_with_every_table(tmp_path: Path) -> None:
    path = tmp_path / "local.db"
    Store(path).close()

    assert recorded_version(path) == str(SCHEMA_VERSION)
    assert tables(path) == {
        "meta",
        "users",
        "bans",
        "blocks",
        "whitelist",
        "tokens",
        "roles",
        "role_settings",
        "friends",
        "friend_permissions",
    }


def test_a_version_1_store_is_migrated_by_a_writable_open_keeping_its_data(
    tmp_path: Path,
) -> None:
    path = version_1_store(tmp_path / "local.db")

    store = Store(path)
    try:
        assert_alice_bob_and_their_relations(store)
        assert store.mask_key() == bytes.fromhex(MASK_KEY)  # never replaced
        assert storage.role_settings(store) == {}
    finally:
        store.close()

    assert recorded_version(path) == str(SCHEMA_VERSION)
    assert "role_settings" in tables(path)


def test_a_version_1_store_is_read_read_only_as_it_is_and_left_unchanged(
    tmp_path: Path,
) -> None:
    path = version_1_store(tmp_path / "local.db")
    before = fingerprint_of_directory(tmp_path)

    store = Store(path, writable=False)
    try:
        assert_alice_bob_and_their_relations(store)
        assert store.mask_key() == bytes.fromhex(MASK_KEY)
    finally:
        store.close()

    assert fingerprint_of_directory(tmp_path) == before  # no -wal, -shm; still version 1
    assert recorded_version(path) == "1"


def test_role_settings_an_older_emulator_kept_survive_the_migration(tmp_path: Path) -> None:
    path = version_1_store(tmp_path / "local.db", role_settings=True)

    store = Store(path)
    try:
        assert storage.role_settings(store) == {"default": {"listUsers": "all"}}
        storage.set_role_settings(store, "default", {"sendMessagesTo": "friendsOnly"})
        assert storage.role_settings(store) == {"default": {"sendMessagesTo": "friendsOnly"}}
    finally:
        store.close()

    assert recorded_version(path) == str(SCHEMA_VERSION)


def test_opening_a_migrated_store_again_changes_nothing(tmp_path: Path) -> None:
    path = version_1_store(tmp_path / "local.db")
    Store(path).close()
    Store(path).close()

    assert recorded_version(path) == str(SCHEMA_VERSION)
    store = Store(path, writable=False)
    try:
        assert_alice_bob_and_their_relations(store)
    finally:
        store.close()


def test_several_writers_opening_a_version_1_store_at_once_migrate_it_once(
    tmp_path: Path,
) -> None:
    path = version_1_store(tmp_path / "local.db", role_settings=True)
    start = threading.Barrier(6)
    failures: list[BaseException] = []

    def open_and_close() -> None:
        start.wait()
        try:
            Store(path).close()
        except BaseException as exc:  # reported below, with the others
            failures.append(exc)

    threads = [threading.Thread(target=open_and_close) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert failures == []
    assert recorded_version(path) == str(SCHEMA_VERSION)
    store = Store(path)
    try:
        assert storage.role_settings(store) == {"default": {"listUsers": "all"}}
    finally:
        store.close()


@pytest.mark.parametrize("writable", [False, True], ids=["read-only", "writable"])
def test_a_store_from_a_newer_version_is_refused_untouched(tmp_path: Path, writable: bool) -> None:
    path = tmp_path / "local.db"
    Store(path).close()
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value = ? WHERE key = 'schema'", (str(SCHEMA_VERSION + 1),))
    db.commit()
    db.close()
    before = fingerprint_of_directory(tmp_path)

    with pytest.raises(StoreError) as caught:
        Store(path, writable=writable)

    assert str(caught.value) == (
        f"{path} was written by a newer chatroster (store version {SCHEMA_VERSION + 1}); upgrade chatroster"
    )
    assert fingerprint_of_directory(tmp_path) == before


# -------------------------------------------------------------------------- damage


@pytest.mark.parametrize("writable", [False, True], ids=["read-only", "writable"])
def test_a_version_1_store_is_checked_against_the_version_1_schema(tmp_path: Path, writable: bool) -> None:
    path = version_1_store(tmp_path / "local.db")
    db = sqlite3.connect(path)
    db.execute("ALTER TABLE users DROP COLUMN avatar")
    db.commit()
    db.close()

    with pytest.raises(StoreError) as caught:
        Store(path, writable=writable)

    assert str(caught.value) == (
        f"{path} is damaged: table users has no column avatar; restore it from a backup or remove it"
    )


def test_a_current_store_without_a_table_of_its_version_is_damaged(tmp_path: Path) -> None:
    path = tmp_path / "local.db"
    Store(path).close()
    db = sqlite3.connect(path)
    db.execute("DROP TABLE role_settings")
    db.commit()
    db.close()

    with pytest.raises(StoreError, match="is damaged: table role_settings is missing"):
        Store(path, writable=False)


def test_a_store_recording_version_0_is_not_a_store(tmp_path: Path) -> None:
    path = version_1_store(tmp_path / "local.db")
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value = '0' WHERE key = 'schema'")
    db.commit()
    db.close()

    with pytest.raises(NotAStoreError, match="no chatroster schema"):
        Store(path)


def test_a_user_written_after_the_migration_reads_back_in_full(tmp_path: Path) -> None:
    path = version_1_store(tmp_path / "local.db")
    store = Store(path)
    try:
        store.insert_users([User("carol", name="Carol", tags=("a",), owner="ops")])
        store.update_user("carol", {"profile": {"email": "carol@example.com"}})
        carol = store.get_user("carol")
        assert carol is not None and carol.profile == {"email": "carol@example.com"}
        assert store.owned_uids("ops") == {"alice", "carol"}
    finally:
        store.close()
