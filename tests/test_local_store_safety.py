"""The local store is safe to point commands at: read-only commands never create or
change a file, a file that is not a store (or is damaged) is refused untouched with a
message, applies take turns, and masks of personal data cannot be looked up.

Real SQLite files in tmp_path throughout; the CLI runs as a subprocess, as users run it.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from chatroster.changes import Action, Change
from chatroster.errors import ChatrosterError, PartialFailure, ProviderError
from chatroster.masking import MASK_KEY_VARIABLE, fingerprint, mask_key
from chatroster.model import ProviderConfig, User
from chatroster.providers import Provider, open_provider
from chatroster.providers.base import Scope
from chatroster.providers.local import LocalProvider
from chatroster.store import ApplyLock, NotAStoreError, Store, StoreError, StoreLockedError

OWNER = "ops"
EVERYTHING = Scope(uids=frozenset({"alice"}), owner=OWNER, everything=True)
NO_TIME = timedelta(0)


# ------------------------------------------------------------------------- helpers


def config(store: Path) -> ProviderConfig:
    return ProviderConfig("local", {"path": store.name}, str(store.parent))


def open_local(store: Path, *, writable: bool = False, lock_timeout: timedelta = NO_TIME) -> Provider:
    return open_provider(config(store), writable=writable, lock_timeout=lock_timeout)


def fingerprint_of_directory(directory: Path) -> dict[str, tuple[str, int, int]]:
    """Every file under ``directory``: content hash, mtime and mode."""
    return {
        str(path.relative_to(directory)): (
            hashlib.sha256(path.read_bytes()).hexdigest(),
            path.stat().st_mtime_ns,
            path.stat().st_mode,
        )
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def foreign_database(path: Path, journal_mode: str) -> Path:
    """Another application's SQLite file, with a ``meta`` table of its own."""
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA journal_mode={journal_mode}")
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
    db.execute("INSERT INTO meta VALUES ('app', 'notes')")
    db.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    db.execute("INSERT INTO notes (body) VALUES ('do not touch')")
    db.commit()
    db.close()
    return path


def seeded_store(path: Path, *uids: str) -> Path:
    """A chatroster store as apply leaves it, holding ``uids``."""
    store = Store(path)
    store.insert_users([User(uid, name=uid.title(), owner=OWNER) for uid in uids])
    store.close()
    return path


def uids_in(path: Path) -> set[str]:
    store = Store(path, writable=False)
    try:
        return set(store.all_users())
    finally:
        store.close()


def drop_column(path: Path, table: str, column: str) -> None:
    db = sqlite3.connect(path)
    db.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    db.commit()
    db.close()


def chatroster(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chatroster", *args],
        check=False,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NO_COLOR": "1"},
    )


def manifest(directory: Path, store: str = ".chatroster/local.db") -> Path:
    path = directory / "team.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "provider": {"type": "local", "path": store},
                "owner": OWNER,
                "users": {"alice": {"name": "Alice", "profile": {"email": "alice@example.com"}}},
            }
        )
    )
    return path


def command(name: str, path: Path) -> list[str]:
    return [name, str(path), "--out", "exported.yaml"] if name == "export" else [name, str(path)]


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process that has opened ``tmp_path/local.db`` for apply and holds it."""
    script = (
        "import sys, time\n"
        "from datetime import timedelta\n"
        "from chatroster.providers.local import LocalProvider\n"
        "LocalProvider(sys.argv[1], lock_timeout=timedelta(0))\n"
        "print('locked', flush=True)\n"
        "time.sleep(120)\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path / "local.db")], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "locked"
    yield process
    process.kill()
    process.wait(timeout=30)
    process.stdout.close()


# ------------------------------------------------- read-only commands write nothing


@pytest.mark.parametrize("journal_mode", ["delete", "wal"])
def test_a_foreign_sqlite_file_is_refused_and_stays_byte_identical(tmp_path: Path, journal_mode: str) -> None:
    store = foreign_database(tmp_path / "app.db", journal_mode)
    before = fingerprint_of_directory(tmp_path)

    for writable in (False, True):  # plan, drift and export; and apply
        with pytest.raises(NotAStoreError) as caught:
            open_local(store, writable=writable)
        assert isinstance(caught.value, ChatrosterError) and caught.value.exit_code == 1
        assert f"{store} is not a chatroster store" in str(caught.value)
        assert "left untouched" in str(caught.value)

    assert fingerprint_of_directory(tmp_path) == before  # no -wal, -shm or .lock either


def test_a_file_that_is_not_sqlite_at_all_is_refused_untouched(tmp_path: Path) -> None:
    store = tmp_path / "notes.db"
    store.write_text("my notes, not a database\n")
    before = fingerprint_of_directory(tmp_path)

    with pytest.raises(NotAStoreError, match="not an SQLite database"):
        open_local(store)

    assert fingerprint_of_directory(tmp_path) == before


def test_a_missing_store_creates_nothing_and_reads_as_an_empty_platform(
    tmp_path: Path,
) -> None:
    store = tmp_path / "typo" / "deeper" / "local.db"

    with open_local(store) as provider:
        live = provider.read(EVERYTHING)
        assert isinstance(provider, LocalProvider)
        notes = provider.notes
        key = provider.mask_key()

    assert live.users == {} and live.bans == {}
    assert notes == (
        f"{store} does not exist yet: planning against an empty local platform; apply creates it",
    )
    assert len(key) == 32
    assert list(tmp_path.iterdir()) == []  # no file, no directories


def test_a_store_apply_wrote_is_read_read_only_without_a_change(tmp_path: Path) -> None:
    store = seeded_store(tmp_path / "local.db", "alice")
    before = fingerprint_of_directory(tmp_path)

    with open_local(store) as provider:
        assert set(provider.read(EVERYTHING).users) == {"alice"}
        assert isinstance(provider, LocalProvider) and provider.notes == ()
        provider.mask_key()

    assert fingerprint_of_directory(tmp_path) == before  # WAL at rest: no -wal, no -shm


def test_a_store_another_process_has_open_is_read_read_only(tmp_path: Path) -> None:
    store = seeded_store(tmp_path / "local.db", "alice")
    serving = Store(store)  # as the emulator holds it: the -wal and -shm files exist
    try:
        serving.insert_users([User("bob", name="Bob", owner=OWNER)])
        with open_local(store) as provider:
            assert set(provider.read(EVERYTHING).users) == {"alice", "bob"}
    finally:
        serving.close()


def test_a_store_written_while_it_is_read_is_read_again(tmp_path: Path) -> None:
    store = seeded_store(tmp_path / "local.db", "alice")
    with open_local(store) as provider:
        writer = Store(store)  # opened, written and closed after the reader opened
        writer.insert_users([User("bob", name="Bob", owner=OWNER)])
        writer.close()

        assert set(provider.read(EVERYTHING).users) == {"alice", "bob"}


def test_a_path_with_uri_characters_opens_read_only(tmp_path: Path) -> None:
    store = seeded_store(tmp_path / "odd ?#% name.db", "alice")

    with open_local(store) as provider:
        assert set(provider.read(EVERYTHING).users) == {"alice"}


def test_a_read_only_provider_refuses_to_write(tmp_path: Path) -> None:
    store = seeded_store(tmp_path / "local.db")

    with open_local(store) as provider, pytest.raises(ProviderError, match="read-only"):
        provider.create_users([Change(Action.CREATE_USER, "alice", after={"name": "Alice"})])


# -------------------------------------------------------------------- damaged stores


@pytest.mark.parametrize("writable", [False, True], ids=["read-only", "writable"])
def test_a_dropped_column_is_a_damaged_store_naming_the_file(tmp_path: Path, writable: bool) -> None:
    store = seeded_store(tmp_path / "local.db", "alice")
    drop_column(store, "users", "avatar")

    with pytest.raises(StoreError) as caught:
        open_local(store, writable=writable)

    assert isinstance(caught.value, ChatrosterError) and caught.value.exit_code == 1
    assert str(caught.value) == (
        f"[local] {store} is damaged: table users has no column avatar; restore it from a backup or remove it"
    )


def test_damage_found_by_a_later_query_is_the_same_error(tmp_path: Path) -> None:
    store = seeded_store(tmp_path / "local.db", "alice")
    with LocalProvider(store) as provider:
        vandal = sqlite3.connect(store)
        vandal.execute("DROP TABLE bans")
        vandal.commit()
        vandal.close()

        with pytest.raises(StoreError, match=f"{store} is damaged: .*no such table: bans"):
            provider.read(EVERYTHING)


def test_a_store_from_a_newer_chatroster_is_refused(tmp_path: Path) -> None:
    store = seeded_store(tmp_path / "local.db")
    db = sqlite3.connect(store)
    db.execute("UPDATE meta SET value = '99' WHERE key = 'schema'")
    db.commit()
    db.close()

    with pytest.raises(StoreError, match="newer chatroster"):
        open_local(store)


# ------------------------------------------------------------ one apply at a time


def test_a_second_apply_fails_at_once_naming_the_first(tmp_path: Path) -> None:
    store = tmp_path / "local.db"
    with open_local(store, writable=True), pytest.raises(StoreLockedError) as caught:
        open_local(store, writable=True)  # lock_timeout 0: refused without waiting

    message = str(caught.value)
    assert f"another apply holds {store} since 20" in message
    assert f"(pid {os.getpid()})" in message
    assert "--lock-timeout" in message
    assert caught.value.exit_code == 1


def test_with_a_lock_timeout_a_second_apply_waits_until_the_first_closes(
    tmp_path: Path,
) -> None:
    store = tmp_path / "local.db"
    first = open_local(store, writable=True)
    closed = threading.Event()

    def close_first() -> None:
        closed.set()
        first.close()

    threading.Timer(0.5, close_first).start()
    with open_local(store, writable=True, lock_timeout=timedelta(seconds=30)) as second:
        assert closed.is_set()  # it got the lock only once the first apply let go
        assert second.read(EVERYTHING).users == {}


def test_a_lock_timeout_that_runs_out_says_how_long_it_waited(tmp_path: Path) -> None:
    store = tmp_path / "local.db"
    with open_local(store, writable=True), pytest.raises(StoreLockedError) as caught:
        open_local(store, writable=True, lock_timeout=timedelta(seconds=1))

    assert "longer than the 1s waited" in str(caught.value)


def test_the_lock_of_a_killed_apply_never_blocks(tmp_path: Path, holder: subprocess.Popen[str]) -> None:
    store = tmp_path / "local.db"
    with pytest.raises(StoreLockedError, match=f"pid {holder.pid}"):
        open_local(store, writable=True)

    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)

    with open_local(store, writable=True) as provider:
        assert provider.read(EVERYTHING).users == {}
    assert json.loads((tmp_path / "local.db.lock").read_text() or "{}") == {}  # released


def test_plan_drift_and_export_never_wait_for_an_apply(tmp_path: Path) -> None:
    store = seeded_store(tmp_path / "local.db", "alice")
    with open_local(store, writable=True), open_local(store) as reader:
        assert set(reader.read(EVERYTHING).users) == {"alice"}


def test_the_emulators_store_takes_no_apply_lock(tmp_path: Path) -> None:
    store = tmp_path / "local.db"
    with open_local(store, writable=True):
        Store(store).close()  # as `chatroster emulator --db` opens it


def test_the_lock_is_released_on_close(tmp_path: Path) -> None:
    store = tmp_path / "local.db"
    open_local(store, writable=True).close()
    open_local(store, writable=True).close()


def test_a_refused_apply_leaves_no_lock_file_beside_a_foreign_file(tmp_path: Path) -> None:
    store = foreign_database(tmp_path / "app.db", "delete")
    with pytest.raises(NotAStoreError):
        open_local(store, writable=True)
    assert not (tmp_path / "app.db.lock").exists()


def test_creating_a_uid_someone_else_created_meanwhile_is_a_change_failure(
    tmp_path: Path,
) -> None:
    store = tmp_path / "local.db"
    with LocalProvider(store) as provider:
        other = Store(store)  # the emulator, or an apply run without the lock
        other.insert_users([User("alice", name="Alice", owner="someone-else")])
        other.close()

        with pytest.raises(PartialFailure) as caught:
            provider.create_users(
                [
                    Change(Action.CREATE_USER, "alice", after={"name": "Alice", "owner": OWNER}),
                    Change(Action.CREATE_USER, "bob", after={"name": "Bob", "owner": OWNER}),
                ]
            )

        assert "already exists" in caught.value.failed["create_user:alice"]
        assert uids_in(store) == {"alice", "bob"}


def test_a_uid_created_twice_in_one_batch_fails_alone(tmp_path: Path) -> None:
    create = Change(Action.CREATE_USER, "alice", after={"name": "Alice", "owner": OWNER})
    with LocalProvider(tmp_path / "local.db") as provider, pytest.raises(PartialFailure) as caught:
        provider.create_users([create, create])

    assert "created twice" in caught.value.failed["create_user:alice"]
    assert uids_in(tmp_path / "local.db") == {"alice"}


# ------------------------------------------------------------------ masks and modes


def test_the_mask_key_is_random_kept_in_the_store_and_stable(tmp_path: Path) -> None:
    one, other = tmp_path / "one.db", tmp_path / "other.db"
    keys = []
    for store in (one, one, other):
        with open_local(store, writable=True) as provider:
            assert isinstance(provider, LocalProvider)
            keys.append(provider.mask_key())
    with open_local(one) as reader:
        assert isinstance(reader, LocalProvider)
        keys.append(reader.mask_key())

    assert len(keys[0]) == 32
    assert keys[0] == keys[1] == keys[3]  # the same store: the same masks on every run
    assert keys[2] != keys[0]


def test_a_store_and_its_lock_file_are_private_to_their_owner(tmp_path: Path) -> None:
    store = tmp_path / "data" / "local.db"
    open_local(store, writable=True).close()

    assert store.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "data" / "local.db.lock").stat().st_mode & 0o777 == 0o600


def test_masks_are_never_keyed_by_a_constant() -> None:
    stored = b"k" * 32
    assert mask_key({}, {}) not in (b"", None)
    assert mask_key({}, {}) == mask_key({}, {})  # one key per process
    assert mask_key({}, {}, stored=stored) == stored
    assert mask_key({"api_key": "s3cret"}, {}, stored=stored) not in (stored, b"")
    assert mask_key({}, {MASK_KEY_VARIABLE: "team"}, stored=stored) == b"team"


# ---------------------------------------------------------------------- the CLI


@pytest.mark.parametrize("name", ["plan", "drift", "export"])
def test_read_only_commands_refuse_a_foreign_file_and_leave_it_alone(tmp_path: Path, name: str) -> None:
    foreign_database(tmp_path / "app.db", "wal")
    path = manifest(tmp_path, store="app.db")
    before = fingerprint_of_directory(tmp_path)

    result = chatroster(*command(name, path), cwd=tmp_path)

    assert result.returncode == 1, result.stderr
    assert f"{tmp_path / 'app.db'} is not a chatroster store" in result.stderr
    assert "Traceback" not in result.stderr
    assert fingerprint_of_directory(tmp_path) == before


@pytest.mark.parametrize("name", ["plan", "drift", "export"])
def test_read_only_commands_on_a_typo_path_create_nothing(tmp_path: Path, name: str) -> None:
    path = manifest(tmp_path, store="dta/local.db")

    result = chatroster(*command(name, path), cwd=tmp_path)

    assert result.returncode in (0, 2), result.stderr  # drift: 2, alice is missing
    assert not (tmp_path / "dta").exists()
    assert f"{tmp_path / 'dta' / 'local.db'} does not exist yet" in result.stderr


def test_plan_on_a_damaged_store_exits_1_naming_the_file(tmp_path: Path) -> None:
    store = seeded_store(tmp_path / ".chatroster" / "local.db", "alice")
    drop_column(store, "users", "avatar")

    result = chatroster("plan", str(manifest(tmp_path)), cwd=tmp_path)

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert f"{store} is damaged: table users has no column avatar" in result.stderr
    assert "restore it from a backup or remove it" in result.stderr


def test_apply_while_another_apply_runs_exits_1_naming_it(
    tmp_path: Path, holder: subprocess.Popen[str]
) -> None:
    path = manifest(tmp_path, store="local.db")

    result = chatroster("apply", str(path), "--yes", cwd=tmp_path)

    assert result.returncode == 1
    assert f"another apply holds {tmp_path / 'local.db'} since" in result.stderr
    assert f"(pid {holder.pid})" in result.stderr
    assert uids_in(tmp_path / "local.db") == set()


def test_apply_with_a_lock_timeout_waits_for_the_other_apply(tmp_path: Path) -> None:
    store = tmp_path / "local.db"
    path = manifest(tmp_path, store="local.db")
    lock = ApplyLock.take(store, NO_TIME)
    threading.Timer(1.0, lock.release).start()

    result = chatroster("apply", str(path), "--yes", "--lock-timeout", "60s", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert uids_in(store) == {"alice"}


def test_apply_makes_a_private_store_that_plan_then_reads_unchanged(tmp_path: Path) -> None:
    path = manifest(tmp_path)
    assert chatroster("apply", str(path), "--yes", cwd=tmp_path).returncode == 0
    store = tmp_path / ".chatroster" / "local.db"
    assert store.stat().st_mode & 0o777 == 0o600
    before = fingerprint_of_directory(tmp_path)

    result = chatroster("plan", str(path), "--detailed-exitcode", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert fingerprint_of_directory(tmp_path) == before


def test_masks_in_a_local_plan_cannot_be_looked_up_and_are_stable(tmp_path: Path) -> None:
    seeded_store(tmp_path / ".chatroster" / "local.db")
    path = manifest(tmp_path)

    first = chatroster("plan", str(path), cwd=tmp_path)
    second = chatroster("plan", str(path), cwd=tmp_path)

    assert first.returncode == 0, first.stderr
    assert fingerprint("alice@example.com") not in first.stdout  # keyed by b"": reversible
    assert "masked:" in first.stdout
    assert first.stdout == second.stdout  # the store's key: the same masks every run
