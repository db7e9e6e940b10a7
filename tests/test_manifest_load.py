"""Good manifests load into the model: absent means unmanaged, empty means none."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from chatroster.errors import ManifestError
from chatroster.manifest import Checked, check, load
from chatroster.manifest.scalar import UnusableNumber, resolve_plain
from chatroster.model import (
    Ban,
    Limit,
    Manifest,
    Policy,
    ProviderConfig,
    State,
    User,
)

FIXTURES = Path(__file__).parent / "fixtures" / "manifests"
EXAMPLES = Path(__file__).parent.parent / "examples"
NOW = datetime(2026, 6, 1, tzinfo=UTC)


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text)
    return path


def test_the_product_example_loads_into_the_expected_model() -> None:
    path = FIXTURES / "good" / "product_example.yaml"
    manifest = load([path], env={}, now=NOW)
    assert manifest == Manifest(
        desired=State(
            users={
                "alice": User(
                    uid="alice",
                    name="Alice Ng",
                    avatar="https://example.com/alice.png",
                    link="https://example.com/u/alice",
                    role="agent",
                    status_message="On call",
                    metadata={"team": "core"},
                    tags=("staff", "beta"),
                    profile={
                        "email": "alice@example.com",
                        "gender": 2,
                        "location": "SG",
                        "level": 3,
                        "ext": {"ext_dept": "eng"},
                    },
                    active=True,
                    blocklist=frozenset({"mallory"}),
                    whitelist=frozenset({"bob"}),
                    whitelist_mode=True,
                    tokens_valid_after=datetime(2026, 11, 1, tzinfo=UTC),
                )
            },
            bans={"mallory": Ban("mallory", datetime(2026, 12, 31, tzinfo=UTC))},
        ),
        provider=ProviderConfig("local", {"path": ".chatroster/local.db"}, str(path.parent)),
        owner="support-team",
        policy=Policy(
            mode="sync",
            prune="none",
            max_deactivate=Limit(percent=25),
            max_delete=Limit(count=0),
            max_unban=Limit(percent=25),
            max_update=Limit(percent=50),
            protected=frozenset({"admin", "support-bot"}),
        ),
        sources=(str(path),),
        digest=hashlib.sha256(path.read_bytes()).hexdigest(),
    )


def test_keys_left_out_are_unmanaged_and_empty_values_mean_none(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "m.yaml",
        "version: 1\nusers:\n"
        "  bare: {name: Bare}\n"
        "  empty: {name: Empty, tags: [], metadata: {}, profile: {}, blocklist: [], whitelist: []}\n"
        "  off: {name: Olga, whitelist: false, active: false}\n",
    )
    users = load([path], env={}).desired.users
    assert users["bare"] == User(uid="bare", name="Bare", active=True)  # declared: active
    assert users["bare"].blocklist is None and users["bare"].whitelist_mode is None
    empty = users["empty"]
    assert (empty.tags, dict(empty.metadata or {}), empty.blocklist) == ((), {}, frozenset())
    assert (empty.whitelist, empty.whitelist_mode) == (frozenset(), True)
    off = users["off"]
    assert (off.whitelist, off.whitelist_mode, off.active) == (None, False, False)


def test_without_a_bans_section_bans_are_unmanaged(tmp_path: Path) -> None:
    unmanaged = write(tmp_path, "a.yaml", "version: 1\n")
    none = write(tmp_path, "b.yaml", "version: 1\nbans: {}\n")
    assert load([unmanaged], env={}).desired.bans is None
    assert load([none], env={}).desired.bans == {}


def test_without_provider_and_policy_the_defaults_apply(tmp_path: Path) -> None:
    path = write(tmp_path, "m.yaml", "version: 1\n")
    manifest = load([path], env={})
    assert manifest.provider == ProviderConfig("local", {}, str(tmp_path))
    assert manifest.policy == Policy()
    assert manifest.owner == "chatroster"


def test_dates_quoted_or_not_with_any_offset_become_utc(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "m.yaml",
        "version: 1\n"
        "users:\n"
        "  a: {name: A, tokens_valid_after: 2026-11-01T08:00:00+08:00}\n"
        "  b: {name: B, tokens_valid_after: '2026-11-01T00:00:00Z'}\n"
        "  c: {name: C, tokens_valid_after: 2026-11-01 00:00:00}\n"
        "  d: {name: D, tokens_valid_after: 2026-11-01}\n"
        "bans:\n"
        "  x: {until: 2999-01-01t00:00:00z}\n"
        "  y: {until: forever}\n",
    )
    manifest = load([path], env={}, now=NOW)
    expected = datetime(2026, 11, 1, tzinfo=UTC)
    assert {u.tokens_valid_after for u in manifest.desired.users.values()} == {expected}
    assert manifest.desired.bans == {
        "x": Ban("x", datetime(2999, 1, 1, tzinfo=UTC)),
        "y": Ban("y", None),
    }


def test_a_numeric_uid_and_quoted_text_stay_text(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "m.yaml",
        "version: 1\nusers:\n  12345: {name: !!str 678, role: 'yes', metadata: {n: 1, on: true}}\n",
    )
    user = load([path], env={}).desired.users["12345"]
    assert (user.uid, user.name, user.role) == ("12345", "678", "yes")
    assert dict(user.metadata or {}) == {"n": 1, "on": True}


def test_variables_are_replaced_with_defaults_and_escapes() -> None:
    path = FIXTURES / "good" / "env_defaults.yaml"
    manifest = load([path], env={"NEXCONN_APP_KEY": "key-1", "NEXCONN_APP_SECRET": "s3cr3t"})
    assert manifest.provider.settings == {
        "url": "http://127.0.0.1:8080",
        "app_key": "key-1",
        "app_secret": "s3cr3t",
    }
    assert manifest.provider.public() == {"url": "http://127.0.0.1:8080"}
    alice = manifest.desired.users["alice"]
    assert alice.name == "Alice Ng"
    assert alice.avatar == "https://example.com/${literal}.png"


def test_a_set_variable_wins_over_the_default_unless_it_is_empty() -> None:
    path = FIXTURES / "good" / "env_defaults.yaml"
    secrets = {"NEXCONN_APP_KEY": "k", "NEXCONN_APP_SECRET": "s"}
    named = load([path], env={**secrets, "ALICE_NAME": "Alice N."})
    emptied = load([path], env={**secrets, "ALICE_NAME": ""})
    assert named.desired.users["alice"].name == "Alice N."
    assert emptied.desired.users["alice"].name == "Alice Ng"


def test_a_variable_value_is_text_and_cannot_inject_yaml(tmp_path: Path) -> None:
    path = write(tmp_path, "m.yaml", "version: 1\nusers:\n  alice: {name: '${NAME}'}\n")
    manifest = load([path], env={"NAME": "x}\n  mallory: {name: Evil"})
    assert list(manifest.desired.users) == ["alice"]
    assert manifest.desired.users["alice"].name == "x}\n  mallory: {name: Evil"


def test_the_environment_is_read_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHATROSTER_TEST_NAME", "From Env")
    path = write(tmp_path, "m.yaml", "version: 1\nusers:\n  a: {name: '${CHATROSTER_TEST_NAME}'}\n")
    assert load([path]).desired.users["a"].name == "From Env"


def test_a_reference_spelled_with_an_escape_is_replaced_too(tmp_path: Path) -> None:
    path = write(tmp_path, "m.yaml", 'version: 1\nusers:\n  a: {name: "\\x24{WHO}"}\n')
    assert load([path], env={"WHO": "Ann"}).desired.users["a"].name == "Ann"


def test_check_makes_the_checks_of_load_and_summarises(tmp_path: Path) -> None:
    example = FIXTURES / "good" / "product_example.yaml"
    assert check([example], env={}, now=NOW) == Checked(
        files=(str(example),),
        users=len(load([example], env={}, now=NOW).desired.users),
        provider="local",
    )
    bad = write(tmp_path, "bad.yaml", "version: 1\nusers:\n  a: {nam: A}\n")
    with pytest.raises(ManifestError) as by_check:
        check([bad])
    with pytest.raises(ManifestError) as by_load:
        load([bad])
    assert by_check.value.problems == by_load.value.problems


def test_a_directory_merges_users_and_bans_of_its_yaml_files() -> None:
    directory = FIXTURES / "good" / "merged"
    manifest = load([directory], env={}, now=NOW)
    assert sorted(manifest.desired.users) == ["admin", "alice", "guest1", "mallory"]
    assert manifest.desired.bans == {
        "mallory": Ban("mallory", None),
        "spammer": Ban("spammer", datetime(2999, 1, 1, tzinfo=UTC)),
    }
    assert manifest.sources == tuple(
        str(directory / name) for name in ("00-settings.yaml", "10-staff.yaml", "20-guests.yml")
    )
    assert manifest.owner == "ops"
    assert manifest.policy.prune == "deactivate"
    assert manifest.provider == ProviderConfig("local", {"path": "local.db"}, str(directory))


def test_the_provider_base_dir_is_that_of_the_file_declaring_it(tmp_path: Path) -> None:
    users = write(tmp_path, "users.yaml", "users:\n  a: {name: A}\n")
    (tmp_path / "conf").mkdir()
    settings = write(tmp_path / "conf", "settings.yaml", "version: 1\nprovider: {type: local}\n")
    manifest = load([users, settings], env={})
    assert manifest.provider.base_dir == str(tmp_path / "conf")
    assert manifest.sources == (str(users), str(settings))


def test_the_digest_covers_every_source_in_order(tmp_path: Path) -> None:
    first = write(tmp_path, "a.yaml", "version: 1\n")
    second = write(tmp_path, "b.yaml", "users:\n  a: {name: A}\n")
    manifest = load([first, second], env={})
    assert manifest.digest == hashlib.sha256(first.read_bytes() + second.read_bytes()).hexdigest()
    second.write_text("users:\n  a: {name: B}\n")
    assert load([first, second], env={}).digest != manifest.digest


def test_the_digest_is_of_the_bytes_as_written_byte_order_mark_and_all(tmp_path: Path) -> None:
    plain = tmp_path / "plain.yaml"
    plain.write_bytes("version: 1\nusers:\n  a: {name: Zoë}\n".encode())
    marked = tmp_path / "marked.yaml"
    marked.write_bytes(b"\xef\xbb\xbf" + plain.read_bytes())
    for path in (plain, marked):
        assert load([path], env={}).digest == hashlib.sha256(path.read_bytes()).hexdigest()
    assert load([plain], env={}).digest != load([marked], env={}).digest


def test_the_same_file_named_twice_is_read_once(tmp_path: Path) -> None:
    path = write(tmp_path, "m.yaml", "version: 1\nusers:\n  a: {name: A}\n")
    assert load([path, tmp_path], env={}).sources == (str(path),)


@pytest.mark.parametrize("name", ["quickstart.yaml", "nexconn.yaml", "cometchat.yaml"])
def test_the_examples_load_and_point_editors_at_the_schema(name: str) -> None:
    path = EXAMPLES / name
    env = {"NEXCONN_APP_KEY": "k", "NEXCONN_APP_SECRET": "s", "COMETCHAT_API_KEY": "a"}
    manifest = load([path], env=env)
    assert manifest.desired.users
    first_line = path.read_text().splitlines()[0]
    assert first_line == "# yaml-language-server: $schema=../schemas/manifest.schema.json"


def test_the_quickstart_shows_every_kind_of_setting() -> None:
    manifest = load([EXAMPLES / "quickstart.yaml"], env={})
    users = manifest.desired.users
    assert manifest.provider.type == "local"
    assert len(users) >= 8
    assert any(user.active is False for user in users.values())
    assert any(user.whitelist_mode for user in users.values())
    assert any(user.blocklist for user in users.values())
    assert any(user.profile and user.tags and user.metadata for user in users.values())
    assert manifest.desired.bans and manifest.policy.protected


@pytest.mark.parametrize(
    "text",
    ["0", "7", "0123", "0x1f", "1_000", "-5", "+3", "190:20:30", "3.5", "1e3", "-.5", "1.5e+3"]
    + ["yes", "Off", "TRUE", "n", "~", "", "null", "0b101", "staff", "12:30"],
)
def test_plain_values_read_as_yaml_safe_load_reads_them(text: str) -> None:
    assert resolve_plain(text) == yaml.safe_load(f"value: {text}")["value"]


@pytest.mark.parametrize(
    "text", [".inf", "-.Inf", ".NaN", "1.0e+999", "9" * 641, "0x" + "f" * 600, "1" + ":00" * 400]
)
def test_plain_numbers_no_platform_can_take_are_refused(text: str) -> None:
    with pytest.raises(UnusableNumber):
        resolve_plain(text)


def test_plain_timestamps_stay_text_for_one_parser_of_dates() -> None:
    assert resolve_plain("2026-12-31T00:00:00Z") == "2026-12-31T00:00:00Z"
    assert resolve_plain("2026-12-31") == "2026-12-31"
