"""One behavioural suite for every provider: what a user of chatroster relies on.

Each test runs against the local platform (a real SQLite file), CometChat and Nexconn
(`chatroster emulator` as a real process on loopback, spoken to over real HTTP), through
the real pipeline: `open_provider` → `read_live` → `make_plan` → `apply`. A change kind
the capability table does not give a platform is skipped for it, with the reason.

The fixture `provider_manifest` is the platform under test; calling it builds a
manifest for that platform (``provider_manifest(User(...), owner=..., policy=...)``).
The vendors run every test twice: with ``--refresh full`` and with ``--refresh
changed`` (each apply records the digests of what it applied, as the CLI's does, and
each plan trusts users whose digest matches), so that trusting a recorded digest never
changes what a user relies on. The local platform always reads fully.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from emulator_process import EmulatorProcess

from chatroster.apply import apply
from chatroster.changes import Action
from chatroster.errors import ApplyError
from chatroster.export import dump_yaml, export_manifest
from chatroster.manifest import load
from chatroster.model import Ban, Manifest, Policy, ProviderConfig, State, User
from chatroster.plan import Plan
from chatroster.providers import CAPABILITIES, Capabilities, Provider, open_provider
from chatroster.refresh import Refresh, recording
from chatroster.runner import Options, make_plan, read_live
from chatroster.store import Store

OWNER = "team"
DEFAULT_POLICY = Policy()
PAST = datetime(2026, 1, 1, tzinfo=UTC)
KINDS = ("local", "cometchat", "nexconn")


# ------------------------------------------------------------------- the platforms


@dataclass
class Platform:
    """A platform under test; calling it builds a manifest for it."""

    kind: str
    config: ProviderConfig
    db_path: Path
    """The SQLite store behind the platform (the emulator serves the same file)."""
    emulator: EmulatorProcess | None = None
    concurrency: int = 4
    refresh: Refresh = "full"
    """How plans read (`chatroster.refresh`): ``changed`` trusts recorded digests."""
    _store: Store | None = field(default=None, repr=False)

    @property
    def caps(self) -> Capabilities:
        return CAPABILITIES[self.kind]

    def __call__(
        self,
        *users: User,
        owner: str = OWNER,
        policy: Policy = DEFAULT_POLICY,
        bans: dict[str, Ban] | None = None,
    ) -> Manifest:
        desired = State(users={user.uid: user for user in users}, bans=bans)
        return Manifest(desired=desired, provider=self.config, owner=owner, policy=policy)

    def open(self, writable: bool = False) -> Provider:
        """Read-only unless it is to apply, as the CLI opens it."""
        return open_provider(self.config, concurrency=self.concurrency, writable=writable)

    def plan(self, manifest: Manifest, **options: Any) -> Plan:
        with self.open() as provider:
            return make_plan(manifest, provider, Options(**{"refresh": self.refresh, **options}))

    def apply(self, manifest: Manifest, **options: Any) -> Plan:
        """Plan and apply, recording digests as `chatroster apply` does; returns the plan
        that was applied."""
        with self.open(writable=True) as provider:
            made = make_plan(manifest, provider, Options(**{"refresh": self.refresh, **options}))
            recording(
                manifest,
                made,
                provider,
                lambda record: apply(made.changes, provider, record=record),
                then=None,
                note=lambda _: None,
            )
        return made

    def converge(self, manifest: Manifest, **options: Any) -> Plan:
        """Apply, then require that a new plan has nothing left to do."""
        made = self.apply(manifest, **options)
        again = self.plan(manifest, **options)
        assert again.empty, f"not converged: {[c.to_json() for c in again.changes]}"
        if self.refresh == "changed" and any(u.active is not False for u in manifest.desired.users.values()):
            # The apply recorded what it applied, so the plan after it trusted users
            # instead of reading them: the mode under test really was in use (users
            # declared inactive are always read, `chatroster.refresh`).
            assert again.trusted > 0 and not again.records, (again.trusted, again.records)
        return made

    def live(self, manifest: Manifest) -> dict[str, User]:
        with self.open() as provider:
            return dict(read_live(manifest, provider, owned=True).users)

    def seed(self, *users: User) -> None:
        """Put users straight into the platform's store, with no ownership marker (as
        if someone made them in the vendor's dashboard)."""
        self.store.insert_users(users)

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = Store(self.db_path)
        return self._store

    def let_time_pass(self, hours: float) -> None:
        """Make past deactivations ``hours`` older. Nexconn restores a user no sooner than
        1 hour after its soft-delete, and the emulator's clock cannot be moved."""
        if self.kind == "nexconn":
            with self.store.transaction() as db:
                db.execute(
                    "UPDATE users SET deactivated_at = deactivated_at - ? WHERE deactivated_at IS NOT NULL",
                    (int(hours * 3600),),
                )

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


def _local(tmp_path: Path, start: Callable[..., EmulatorProcess]) -> Platform:
    db = tmp_path / "local.db"
    return Platform("local", ProviderConfig("local", {"path": str(db)}), db)


def _cometchat(tmp_path: Path, start: Callable[..., EmulatorProcess]) -> Platform:
    emulator = start()
    settings = {
        "app_id": "emulator-app",
        "url": f"{emulator.base_url}/v3",
        "api_key": "emulator-api-key",
    }
    return Platform("cometchat", ProviderConfig("cometchat", settings), emulator.db_path, emulator)


def _nexconn(tmp_path: Path, start: Callable[..., EmulatorProcess]) -> Platform:
    emulator = start()
    settings = {  # the emulator's public test credentials (`emulator/config.py`)
        "url": emulator.base_url,
        "app_key": "emulator-app-key",
        "app_secret": "emulator-app-secret",
    }
    return Platform("nexconn", ProviderConfig("nexconn", settings), emulator.db_path, emulator)


PLATFORMS = {"local": _local, "cometchat": _cometchat, "nexconn": _nexconn}
#: Every platform with a full read; the vendors again trusting recorded digests.
RUNS = [(kind, "full") for kind in KINDS] + [("cometchat", "changed"), ("nexconn", "changed")]


@pytest.fixture(params=RUNS, ids=[kind if mode == "full" else f"{kind}-changed" for kind, mode in RUNS])
def provider_manifest(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    emulator_factory: Callable[..., EmulatorProcess],
) -> Iterator[Platform]:
    """The platform under test (local, cometchat, nexconn; the vendors also with
    ``--refresh changed``) as a manifest builder."""
    kind, refresh = request.param
    platform = PLATFORMS[kind](tmp_path, emulator_factory)
    platform.refresh = refresh
    yield platform
    platform.close()


def needs(platform: Platform, capability: str) -> None:
    """Skip what the platform cannot do; `test_the_capability_table_is_the_products`
    makes sure that a capability switched off by mistake fails instead of skipping."""
    if not getattr(platform.caps, capability):
        alternative = platform.caps.alternatives.get(capability, "")
        pytest.skip(f"{platform.kind} has no {capability}" + (f" ({alternative})" if alternative else ""))


#: PRODUCT.md, "Capabilities by platform": what each platform can do, as the user is told.
PRODUCT_CAPABILITIES: dict[str, dict[str, Any]] = {
    "local": {
        "user_fields": {"name", "avatar", "link", "role", "status_message", "metadata", "tags", "profile"},
        "deactivate": True,
        "delete": True,
        "bans": True,
        "blocklist": True,
        "whitelist": True,
        "expire_tokens": True,
        "roles": True,
        "friends": True,
    },
    "nexconn": {
        "user_fields": {"name", "avatar", "tags", "profile"},
        "deactivate": True,
        "delete": False,
        "bans": True,
        "blocklist": True,
        "whitelist": True,
        "expire_tokens": True,
        "roles": False,
        "friends": True,
    },
    "cometchat": {
        "user_fields": {"name", "avatar", "link", "role", "status_message", "metadata", "tags"},
        "deactivate": True,
        "delete": True,
        "bans": False,
        "blocklist": True,
        "whitelist": False,
        "expire_tokens": True,
        "roles": True,
        "friends": False,
    },
}


@pytest.mark.parametrize("kind", KINDS)
def test_the_capability_table_is_the_products(kind: str) -> None:
    caps = CAPABILITIES[kind]
    table = {name: getattr(caps, name) for name in PRODUCT_CAPABILITIES[kind]}
    assert table == PRODUCT_CAPABILITIES[kind]


def full_user(platform: Platform, uid: str, **overrides: Any) -> User:
    """A user with every profile field the platform keeps."""
    values: dict[str, Any] = {
        "name": f"{uid.title()} Example",
        "avatar": f"https://example.com/{uid}.png",
        "link": f"https://example.com/u/{uid}",
        "role": "default",
        "status_message": "On call",
        "metadata": {"team": "core", "level": 2},
        "tags": ("beta", "staff"),
        "profile": {"email": f"{uid}@example.com", "level": 3},
    }
    fields = {name: value for name, value in values.items() if name in platform.caps.user_fields}
    return User(uid=uid, **{**fields, **overrides})


def kinds(made: Plan) -> set[Action]:
    return {change.action for change in made.changes}


# ------------------------------------------------------------------ convergence


def test_creates_users_with_every_field_the_platform_keeps(provider_manifest: Platform) -> None:
    platform = provider_manifest
    manifest = platform(full_user(platform, "alice"), full_user(platform, "bob", tags=()))
    made = platform.converge(manifest)
    assert made.summary() == {"create_user": 2}
    alice = platform.live(manifest)["alice"]
    assert alice.owner == OWNER and alice.active is True
    for name in platform.caps.user_fields:
        assert getattr(alice, name) == getattr(manifest.desired.users["alice"], name), name


def test_updates_changed_fields_and_clears_emptied_ones(provider_manifest: Platform) -> None:
    platform = provider_manifest
    platform.converge(platform(full_user(platform, "alice")))
    changed = {"name": "Alice Renamed", "tags": ("gold",)}
    emptied = {**changed, "avatar": "", "link": "", "metadata": {}, "tags": ()}
    for values in (changed, emptied):
        fields = {k: v for k, v in values.items() if k in platform.caps.user_fields}
        manifest = platform(full_user(platform, "alice", **fields))
        made = platform.converge(manifest)
        assert kinds(made) == {Action.UPDATE_USER}
    alice = platform.live(manifest)["alice"]
    assert alice.name == "Alice Renamed" and alice.owner == OWNER
    assert not alice.avatar and not alice.tags and not alice.metadata


def test_applying_the_same_plan_twice_changes_nothing_more(provider_manifest: Platform) -> None:
    platform = provider_manifest
    users = [full_user(platform, uid) for uid in ("alice", "bob", "carol")]
    manifest = platform(*users)
    made = platform.plan(manifest)
    with platform.open(writable=True) as provider:
        apply(made.changes, provider)
        first = dict(read_live(manifest, provider).users)
        apply(made.changes, provider)  # as if an interrupted apply were run again
        second = dict(read_live(manifest, provider).users)
    assert first == second
    assert platform.plan(manifest).empty


def test_re_apply_of_a_converged_manifest_plans_nothing(provider_manifest: Platform) -> None:
    platform = provider_manifest
    manifest = platform(full_user(platform, "alice"), full_user(platform, "bob"))
    platform.converge(manifest)
    assert platform.apply(manifest).empty


# ------------------------------------------------------------- every change kind


def test_deactivates_and_reactivates_users(provider_manifest: Platform) -> None:
    platform = provider_manifest
    needs(platform, "deactivate")
    alice = full_user(platform, "alice")
    platform.converge(platform(alice, full_user(platform, "bob")))
    made = platform.converge(platform(alice.evolve(active=False), full_user(platform, "bob")))
    assert kinds(made) == {Action.DEACTIVATE_USER}
    platform.let_time_pass(hours=2)
    manifest = platform(alice.evolve(active=True), full_user(platform, "bob"))
    assert platform.live(manifest)["alice"].active is False
    made = platform.converge(manifest)
    if platform.caps.restore_keeps_data:
        assert kinds(made) == {Action.REACTIVATE_USER}
    else:  # Nexconn restores the uid alone: ownership and every field are written again
        assert kinds(made) == {Action.REACTIVATE_USER, Action.ADOPT_USER, Action.UPDATE_USER}
    assert platform.live(manifest)["alice"].active is True


def test_creates_a_user_deactivated_when_the_manifest_says_so(provider_manifest: Platform) -> None:
    platform = provider_manifest
    needs(platform, "deactivate")
    manifest = platform(full_user(platform, "alice", active=False))
    platform.converge(manifest)
    assert platform.live(manifest)["alice"].active is False


def test_adds_and_removes_blocks(provider_manifest: Platform) -> None:
    platform = provider_manifest
    needs(platform, "blocklist")
    others = [full_user(platform, uid) for uid in ("bob", "carol", "dave")]
    alice = full_user(platform, "alice", blocklist=frozenset({"bob", "carol"}))
    made = platform.converge(platform(alice, *others))
    assert made.count(Action.ADD_BLOCK) == 2
    manifest = platform(alice.evolve(blocklist=frozenset({"carol", "dave"})), *others)
    made = platform.converge(manifest)
    assert made.summary() == {"remove_block": 1, "add_block": 1}
    assert platform.live(manifest)["alice"].blocklist == {"carol", "dave"}


def test_leaves_a_blocklist_the_manifest_does_not_manage(provider_manifest: Platform) -> None:
    platform = provider_manifest
    needs(platform, "blocklist")
    bob = full_user(platform, "bob")
    platform.converge(platform(full_user(platform, "alice", blocklist=frozenset({"bob"})), bob))
    # blocklist absent: unmanaged, so the block made earlier stays.
    manifest = platform(full_user(platform, "alice"), bob)
    assert platform.plan(manifest).empty
    assert platform.store.relations("blocks", ["alice"]).get("alice") == {"bob"}


def test_expires_tokens_issued_before_a_time(provider_manifest: Platform) -> None:
    platform = provider_manifest
    needs(platform, "expire_tokens")
    manifest = platform(full_user(platform, "alice"))
    platform.converge(manifest)
    platform.store.issue_token("alice")
    later = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)
    manifest = platform(full_user(platform, "alice", tokens_valid_after=later))
    made = platform.converge(manifest)
    assert kinds(made) == {Action.EXPIRE_TOKENS}
    # How the token stops working is the platform's (deleted, flushed, expired); that
    # the watermark reads back is what makes the next plan empty.
    assert platform.live(manifest)["alice"].tokens_valid_after == later


def test_bans_and_unbans_users(provider_manifest: Platform) -> None:
    platform = provider_manifest
    needs(platform, "bans")
    users = [full_user(platform, uid) for uid in ("alice", "mallory")]
    until = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0)
    platform.converge(platform(*users))
    made = platform.converge(platform(*users, bans={"mallory": Ban("mallory", until)}))
    assert kinds(made) == {Action.BAN_USER}
    made = platform.converge(platform(*users, bans={}))
    assert kinds(made) == {Action.UNBAN_USER}


def test_whitelists(provider_manifest: Platform) -> None:
    platform = provider_manifest
    needs(platform, "whitelist")
    others = [full_user(platform, uid) for uid in ("bob", "carol")]
    alice = full_user(platform, "alice", whitelist=frozenset({"bob"}), whitelist_mode=True)
    made = platform.converge(platform(alice, *others))
    assert {Action.ADD_WHITELIST} <= kinds(made)
    made = platform.converge(platform(alice.evolve(whitelist=frozenset({"carol"})), *others))
    assert made.summary() == {"remove_whitelist": 1, "add_whitelist": 1}


# -------------------------------------------------------------- ownership and prune


def test_adopts_users_it_finds_without_an_owner(provider_manifest: Platform) -> None:
    platform = provider_manifest
    platform.seed(User(uid="alice", name="Alice Example"))
    manifest = platform(full_user(platform, "alice"))
    made = platform.converge(manifest)
    assert Action.ADOPT_USER in kinds(made) and Action.CREATE_USER not in kinds(made)
    assert platform.live(manifest)["alice"].owner == OWNER


def test_refuses_users_of_another_owner_unless_taken_over(provider_manifest: Platform) -> None:
    platform = provider_manifest
    platform.converge(platform(full_user(platform, "alice"), owner="other"))
    manifest = platform(full_user(platform, "alice", name="Mine Now"))
    refused = platform.plan(manifest)
    assert refused.conflicts == ("alice",) and refused.empty
    made = platform.converge(manifest, allow_takeover=True)
    assert Action.ADOPT_USER in kinds(made)
    assert platform.live(manifest)["alice"].owner == OWNER


def test_prunes_only_the_users_it_owns(provider_manifest: Platform) -> None:
    platform = provider_manifest
    needs(platform, "deactivate")
    platform.seed(User(uid="stranger", name="Not Ours"))
    platform.converge(platform(full_user(platform, "alice"), full_user(platform, "bob")))
    policy = Policy(prune="deactivate", max_deactivate=Policy().max_delete.parse(10))
    manifest = platform(full_user(platform, "alice"), policy=policy)
    made = platform.converge(manifest)
    assert [(c.action, c.uid) for c in made.changes] == [(Action.DEACTIVATE_USER, "bob")]
    assert platform.store.get_user("stranger").active  # type: ignore[union-attr]


def test_deletes_pruned_users_when_the_policy_says_delete(provider_manifest: Platform) -> None:
    platform = provider_manifest
    needs(platform, "delete")
    platform.converge(platform(full_user(platform, "alice"), full_user(platform, "bob")))
    policy = Policy(prune="delete", max_delete=Policy().max_delete.parse(10))
    manifest = platform(full_user(platform, "alice"), policy=policy)
    made = platform.converge(manifest)
    assert [(c.action, c.uid) for c in made.changes] == [(Action.DELETE_USER, "bob")]
    assert platform.store.get_user("bob") is None


def test_never_touches_protected_users(provider_manifest: Platform) -> None:
    platform = provider_manifest
    needs(platform, "deactivate")
    platform.converge(platform(full_user(platform, "alice"), full_user(platform, "admin")))
    policy = Policy(
        prune="deactivate", protected=frozenset({"admin"}), max_deactivate=Policy().max_delete.parse(10)
    )
    manifest = platform(full_user(platform, "alice"), policy=policy)
    assert platform.plan(manifest).empty


# ------------------------------------------------------------------------- export


def test_export_round_trip_plans_no_changes(provider_manifest: Platform, tmp_path: Path) -> None:
    platform = provider_manifest
    caps = platform.caps
    blocks = {"blocklist": frozenset({"bob"})} if caps.blocklist else {}
    users = [
        full_user(platform, "alice", **blocks),
        full_user(platform, "bob", active=False if caps.deactivate else None),
        full_user(platform, "carol", tokens_valid_after=PAST if caps.expire_tokens else None),
    ]
    platform.converge(platform(*users))
    platform.seed(User(uid="stranger", name="Not Ours"))
    with platform.open() as provider:
        live = read_live(platform(*users), provider, everything=True)
    exported = tmp_path / "exported.yaml"
    exported.write_text(dump_yaml(export_manifest(live, provider=platform.config, owner=OWNER)))
    # The exported file names each secret as ${TYPE_KEY}; give those the real values.
    env = {
        f"{platform.kind.upper()}_{key.upper()}": str(value)
        for key, value in platform.config.settings.items()
        if key in platform.config.SECRET_KEYS
    }
    manifest = load([exported], env=env)
    # A platform that cannot list every user exports the users the manifest names.
    strangers = ["stranger"] if caps.list_users else []
    assert set(manifest.desired.users) == {"alice", "bob", "carol", *strangers}
    made = platform.plan(manifest)
    # Everything matches; only the user nobody owned yet is adopted.
    assert [(c.action, c.uid) for c in made.changes] == [(Action.ADOPT_USER, uid) for uid in strangers]


def test_a_failed_change_is_reported_and_the_rest_applied(provider_manifest: Platform) -> None:
    platform = provider_manifest
    needs(platform, "blocklist")
    users = [full_user(platform, uid) for uid in ("alice", "bob", "carol")]
    platform.converge(platform(*users))
    blocks = frozenset({"carol"})
    manifest = platform(users[0].evolve(blocklist=blocks), users[1].evolve(blocklist=blocks), users[2])
    with platform.open(writable=True) as provider:
        made = make_plan(manifest, provider, Options())
        platform.store.delete_users(["alice"])  # gone between plan and apply
        with pytest.raises(ApplyError) as caught:
            apply(made.changes, provider, continue_on_error=True)
    assert [key for key, _ in caught.value.failures] == ["add_block:alice:carol"]
    assert platform.store.relations("blocks", ["bob"]) == {"bob": {"carol"}}
