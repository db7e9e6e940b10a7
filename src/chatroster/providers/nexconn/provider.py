"""`NexconnProvider`: what to read for a `Scope`, and which calls carry out each action.

Reading uses the fewest calls the API allows. Nexconn cannot list users, so each
declared uid costs one ``user/get``; everything else comes from list and batch
endpoints (docs/providers.md gives the formula). Ownership is kept in the user's
hosted profile (``ext_chatrosterOwner``), the only per-user data readable in bulk, so
that owned users are found for pruning.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from ...changes import Action, Change
from ...errors import Refusal
from ...http import run_concurrently
from ...model import ProviderConfig, State, User
from .. import CAPABILITIES
from ..base import Capacity, DigestEntry, Presence, Provider, Scope
from ..batches import Failures
from . import api, friends
from .api import Endpoint, HostedProfile, Push
from .batches import Batches, failure
from .client import Details, NexconnClient, Settings

#: What a trusted user (``--refresh changed``) is not read for: the per-user reads. Its
#: hosted profile, owner, token watermark and name and avatar (the copy in the profile)
#: come from ``profile/list``, read in bulk anyway.
TRUSTED_UNREAD = frozenset(
    {"tags", "blocklist", "whitelist", "whitelist_mode", "friends", "friend_permission"}
)

#: Two ban expiries this close are the same ban (the vendor counts in minutes).
BAN_TOLERANCE = timedelta(minutes=2)


def open_nexconn(config: ProviderConfig, *, concurrency: int | None = None) -> NexconnProvider:
    """The provider a manifest names; settings are checked before any request."""
    return NexconnProvider(Settings.from_config(config, concurrency))


class NexconnProvider(friends.NexconnFriends, Provider):
    type = "nexconn"
    capabilities = CAPABILITIES["nexconn"]
    concurrent_writes = True
    batch_size = 1000
    """One tag call takes 1000 users, so the applier hands over that many at once."""

    def __init__(
        self,
        settings: Settings,
        *,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings
        self.client = NexconnClient(settings, transport)
        self.batches = Batches(settings.concurrency)
        self._clock = clock
        self._seen: dict[str, Push] = {}
        """Push data of the active users the last `read` found (adoption copies it)."""
        self._registered = 0
        """Registered users the last `read` saw (counted in a development app only)."""
        self._carried: dict[str, str] = {}
        """Digests written with the user's one change of this apply (`carry_digests`)."""

    def identity(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "url": self.settings.base_urls[0],
            "app_key_hash": api.key_hash(self.settings.app_key),
        }

    @property
    def counters(self) -> dict[str, int]:
        return self.client.counters

    def close(self) -> None:
        self.client.close()

    def request_ids(self, change: Change) -> tuple[str, ...]:
        return self.client.request_ids.take(change)

    def presence(self, uids: Sequence[str]) -> dict[str, Presence]:
        """``connection-status/get``, one user a call (the vendor has no batch)."""
        found: dict[str, Presence] = {}
        for uid, outcome in run_concurrently(self.client.online, uids, self.settings.concurrency):
            if isinstance(outcome, BaseException):
                raise outcome
            found[uid] = Presence(online=outcome)
        return found

    def capacity(self) -> Capacity | None:
        limit = self.capabilities.development_user_limit
        if self.settings.environment != "development" or limit is None:
            return None
        return Capacity(self._registered, limit, "development")

    # ========================================================================= read

    def read(self, scope: Scope) -> State:
        # A development app counts its registered users: hosted profiles are the one
        # list of them the vendor gives (see `capacity`). With --refresh changed the
        # hosted profiles are read in bulk too: the digests are there.
        counting = self.settings.environment == "development"
        changed = scope.digests is not None and not scope.everything
        lists = scope.owned or scope.everything or counting or changed
        read_bans = scope.bans or scope.everything
        entries = self.tally("list entries (deactivated users, bans, profiles)")
        deleted, bans, listed = self.client.lists(with_bans=read_bans, with_profiles=lists, tally=entries)
        trusted = _trusted(scope, listed, deleted) if changed else set()
        wanted = set(scope.uids | scope.extra_uids) - trusted | (set(listed) if scope.everything else set())
        # user/get answers "not found" for a soft-deleted user, so it is not asked.
        asked = sorted(wanted - deleted)
        push = self.client.pushes(asked, self.tally("users", len(asked)))
        found = set(push) | (wanted & deleted)
        self._seen = {**push, **{uid: listed[uid].push for uid in trusted}}
        self._registered = len(deleted | set(listed) | set(push) | trusted)
        detailed = sorted(found if scope.everything else found & scope.uids)
        # Relations of a soft-deleted user cannot be read (the vendor drops them).
        readable = set(push) & set(detailed)
        details = self.client.details(
            detailed,
            [] if lists else detailed,
            blocklists={uid for uid in readable if scope.everything or uid in scope.blocklists},
            whitelists={uid for uid in readable if scope.everything or uid in scope.whitelists},
            new_tally=lambda calls: self.tally("calls for tags, profiles and lists", calls),
        )
        profiles = listed or details.profiles
        users = {
            uid: _user(uid, push.get(uid), profiles.get(uid, HostedProfile()), uid in detailed, details)
            for uid in found
        }
        users.update({uid: _owned_user(uid, listed[uid], active=True) for uid in trusted})
        self._read_friends(users, readable, scope)
        if scope.owned:
            for uid, hosted in listed.items():
                if uid not in users and hosted.owner == scope.owner:
                    users[uid] = _owned_user(uid, hosted, active=uid not in deleted)
        return State(
            users=users, bans=bans if read_bans else None, trusted=dict.fromkeys(trusted, TRUSTED_UNREAD)
        )

    def carry_digests(self, digests: Mapping[str, tuple[Change, str]]) -> frozenset[str]:
        """A create is carried when its ``profile/set`` is its last write (no tags, no
        whitelist mode, not deactivated after), an adoption always (one profile write)."""
        self._carried = {
            uid: digest
            for uid, (change, digest) in digests.items()
            if change.action is Action.ADOPT_USER
            or (
                change.action is Action.CREATE_USER
                and not change.after.get("tags")
                and not change.after.get("whitelist_mode")
                and change.after.get("active") is not False
            )
        }
        return frozenset(self._carried)

    def record_digests(self, entries: Sequence[DigestEntry]) -> dict[str, str]:
        """The hosted-profile read-modify-write (by 20) with the digest, and the copy of
        the declared name and avatar, so that a trusted user reads with them."""
        failed: dict[str, str] = {}
        current: dict[str, HostedProfile] = {}
        chunks = list(api.chunked([entry.uid for entry in entries], api.PROFILE_GET.per_call))
        for chunk, outcome in run_concurrently(self.client.profiles, chunks, self.batches.concurrency):
            if isinstance(outcome, BaseException):
                failed.update(dict.fromkeys(chunk, str(outcome)))
            else:
                current.update(outcome)

        def write(entry: DigestEntry) -> None:
            before = current.get(entry.uid, HostedProfile())
            after = before.with_digest(entry.digest)
            if entry.declared is not None:
                declared = {"name": entry.declared.name, "avatar": entry.declared.avatar}
                after = after.with_push({k: v for k, v in declared.items() if v is not None})
            if after != before:
                self.client.call(api.PROFILE_SET, after.to_api(entry.uid))

        pending = [entry for entry in entries if entry.uid not in failed]
        for entry, written in run_concurrently(write, pending, self.batches.concurrency):
            if isinstance(written, BaseException):
                failed[entry.uid] = str(written)
        return failed

    # ======================================================================== write
    # Each action is a pipeline of steps; a step runs on the changes every earlier step
    # carried out, and the changes that failed anywhere are reported together.

    def create_users(self, changes: Sequence[Change]) -> None:
        # Soft-delete goes last: the vendor refuses every other write to a soft-deleted user.
        self.batches.pipeline(
            changes,
            [
                lambda batch: self.batches.each(
                    batch, lambda change: self.client.register(change, self._carried.get(change.uid))
                ),
                lambda batch: self._set_tags([c for c in batch if c.after.get("tags")]),
                lambda batch: self._set_modes([c for c in batch if c.after.get("whitelist_mode")]),
                lambda batch: self._soft_delete([c for c in batch if c.after.get("active") is False]),
            ],
        )

    def update_users(self, changes: Sequence[Change]) -> None:
        self.batches.pipeline(
            changes,
            [
                lambda batch: self.batches.each(_having(batch, "name", "avatar"), self._update_push),
                lambda batch: self._rewrite_profiles(
                    _having(batch, "profile", "name", "avatar"), _edit_for_update
                ),
                self._set_tags,
            ],
        )

    def adopt_users(self, changes: Sequence[Change]) -> None:
        self.batches.pipeline(
            changes,
            [
                lambda batch: self._rewrite_profiles(batch, self._edit_for_adopt),
            ],
        )

    def expire_tokens(self, changes: Sequence[Change]) -> None:
        # Expire first, then record the watermark, so that it never claims more than was done.
        self.batches.pipeline(
            changes,
            [
                self._expire,
                lambda batch: self._rewrite_profiles(
                    batch, lambda c, hosted: hosted.with_tokens(api.required_time(c, "tokens_valid_after"))
                ),
            ],
        )

    def deactivate_users(self, changes: Sequence[Change]) -> None:
        self.batches.pipeline(changes, [self._soft_delete])

    def reactivate_users(self, changes: Sequence[Change]) -> None:
        self.batches.pipeline(changes, [self._restore])

    def ban_users(self, changes: Sequence[Change]) -> None:
        now = self._clock()
        groups = api.grouped_chunks(
            ((api.ban_minutes(api.time_of(c.after.get("until")), now), c) for c in changes),
            api.BAN.per_call,
        )

        def ban(minutes: int, chunk: list[Change]) -> None:
            self.client.call(api.BAN, {"userIds": _uids(chunk), "durationMinutes": minutes})

        def verify(minutes: int, chunk: list[Change]) -> set[str]:
            bans, due = self.client.bans(), now + timedelta(minutes=minutes) - BAN_TOLERANCE
            return _done(chunk, lambda uid: uid in bans and (bans[uid].until or due) >= due)

        self.batches.pipeline(changes, [lambda _: self.batches.groups(groups, ban, verify)])

    def unban_users(self, changes: Sequence[Change]) -> None:
        groups = api.grouped_chunks(((None, c) for c in changes), api.UNBAN.per_call)

        def verify(_: None, chunk: list[Change]) -> set[str]:
            bans = self.client.bans()
            return _done(chunk, lambda uid: uid not in bans)

        self.batches.pipeline(
            changes,
            [
                lambda _: self.batches.groups(
                    groups, lambda _, chunk: self.client.call(api.UNBAN, {"userIds": _uids(chunk)}), verify
                )
            ],
        )

    def add_blocks(self, changes: Sequence[Change]) -> None:
        self.batches.pipeline(
            changes,
            [
                lambda batch: self._relations(
                    batch, api.BLOCK_ADD, "targetUserIds", self.client.blocklist, True
                )
            ],
        )

    def remove_blocks(self, changes: Sequence[Change]) -> None:
        self.batches.pipeline(
            changes,
            [
                lambda batch: self._relations(
                    batch, api.BLOCK_REMOVE, "blockedUserIds", self.client.blocklist, False
                )
            ],
        )

    def add_whitelist(self, changes: Sequence[Change]) -> None:
        self.batches.pipeline(
            changes,
            [
                lambda batch: self._relations(
                    batch, api.WHITELIST_ADD, "whiteUserId", self.client.whitelist, True
                )
            ],
        )

    def remove_whitelist(self, changes: Sequence[Change]) -> None:
        self.batches.pipeline(
            changes,
            [
                lambda batch: self._relations(
                    batch, api.WHITELIST_REMOVE, "whiteUserId", self.client.whitelist, False
                )
            ],
        )

    def set_whitelist_modes(self, changes: Sequence[Change]) -> None:
        self.batches.pipeline(changes, [self._set_modes])

    # -- users and profiles

    def _update_push(self, change: Change) -> None:
        self.client.call(api.USER_UPDATE, {"userId": change.uid, **api.push_to_api(change.after)})

    def _edit_for_adopt(self, change: Change, hosted: HostedProfile) -> HostedProfile:
        name, avatar = self._seen.get(change.uid) or self.client.push(change.uid) or (None, None)
        if name is not None:
            hosted = hosted.with_push({"name": name, "avatar": avatar})
        hosted = hosted.with_owner(str(change.after["owner"]))
        carried = self._carried.get(change.uid)
        return hosted.with_digest(carried) if carried else hosted

    def _rewrite_profiles(
        self, changes: list[Change], edit: Callable[[Change, HostedProfile], HostedProfile]
    ) -> Failures:
        """Read-modify-write of hosted profiles (by 20), so that keys chatroster does not
        manage are kept; a profile already as wanted is not written again."""
        current: dict[str, HostedProfile] = {}
        failed: Failures = {}
        chunks = list(api.chunked(changes, api.PROFILE_GET.per_call))
        outcomes = run_concurrently(
            lambda chunk: self.client.profiles(_uids(chunk)), chunks, self.batches.concurrency
        )
        for chunk, outcome in outcomes:
            if isinstance(outcome, BaseException):
                failed.update(failure(chunk, outcome))
            else:
                current.update(outcome)

        def write(change: Change) -> None:
            before = current.get(change.uid, HostedProfile())
            after = edit(change, before)
            if after == before:
                return  # written already, by an earlier apply that was interrupted
            self.client.call(api.PROFILE_SET, after.to_api(change.uid))
            if after.drops_keys_of(before):
                # profile/set only adds and replaces keys, so removing one means clearing
                # and writing again; only after a first write succeeded, so that a user
                # whose profile cannot be written never loses its marker on the way.
                self.client.call(api.PROFILE_DELETE, {"userIds": [change.uid]})
                self.client.call(api.PROFILE_SET, after.to_api(change.uid))

        pending = [c for c in changes if c.key not in failed]
        return {**failed, **self.batches.each(pending, write)}

    def _set_tags(self, changes: list[Change]) -> Failures:
        """Users with the same tags share calls (the call sets one tag list for all)."""
        groups = api.grouped_chunks(
            ((tuple(c.after["tags"]), c) for c in _having(changes, "tags")), api.TAG_SET.per_call
        )

        def call(tags: tuple[str, ...], chunk: list[Change]) -> None:
            self.client.call(api.TAG_SET, {"userIds": _uids(chunk), "tags": list(tags)})

        def verify(tags: tuple[str, ...], chunk: list[Change]) -> set[str]:
            found: dict[str, tuple[str, ...]] = {}
            for part in api.chunked(_uids(chunk), api.TAG_GET.per_call):
                found.update(self.client.tags(part))
            return _done(chunk, lambda uid: sorted(found.get(uid, ())) == sorted(tags))

        return self.batches.groups(groups, call, verify)

    def _expire(self, changes: list[Change]) -> Failures:
        # No verification: the vendor cannot read this back, and expiring again is harmless.
        groups = api.grouped_chunks(
            ((api.to_ms(api.required_time(c, "tokens_valid_after")), c) for c in changes), api.EXPIRE.per_call
        )
        return self.batches.groups(
            groups,
            lambda ms, chunk: self.client.call(api.EXPIRE, {"userIds": _uids(chunk), "expiresAt": ms}),
            None,
        )

    # -- deactivation

    def _soft_delete(self, changes: list[Change]) -> Failures:
        groups = api.grouped_chunks(((None, c) for c in changes), api.SOFT_DELETE.per_call)

        def verify(_: None, chunk: list[Change]) -> set[str]:
            return _done(chunk, self.client.soft_deleted().__contains__)

        return self.batches.groups(
            groups,
            lambda _, chunk: self.client.call(api.SOFT_DELETE, {"userIds": _uids(chunk)}),
            verify,
        )

    def _restore(self, changes: list[Change]) -> Failures:
        groups = api.grouped_chunks(((None, c) for c in changes), api.RESTORE.per_call)

        def restore(_: None, chunk: list[Change]) -> None:
            try:
                self.client.call(api.RESTORE, {"userIds": _uids(chunk)})
            except Refusal as exc:
                if "hour" not in exc.message.lower():
                    raise
                retry = self._clock() + timedelta(hours=1)
                raise Refusal(
                    exc.endpoint,
                    exc.status,
                    exc.code,
                    f"{exc.message}; Nexconn restores a user no sooner than 1 hour after it "
                    f"was deactivated: run apply again after {retry:%Y-%m-%d %H:%M} UTC",
                ) from None

        def verify(_: None, chunk: list[Change]) -> set[str]:
            gone = self.client.soft_deleted()
            return _done(chunk, lambda uid: uid not in gone)

        return self.batches.groups(groups, restore, verify)

    # -- relations

    def _relations(
        self,
        changes: list[Change],
        endpoint: Endpoint,
        field: str,
        read: Callable[[str], frozenset[str]],
        present: bool,
    ) -> Failures:
        """Blocklist or whitelist entries: one call per user and up to 20 targets."""
        groups = api.grouped_chunks(((c.uid, c) for c in changes), endpoint.per_call)

        def call(uid: str, chunk: list[Change]) -> None:
            self.client.call(endpoint, {"userId": uid, field: [str(c.target) for c in chunk]})

        def verify(uid: str, chunk: list[Change]) -> set[str]:
            found = read(uid)
            return {c.key for c in chunk if (c.target in found) == present}

        return self.batches.groups(groups, call, verify)

    def _set_modes(self, changes: list[Change]) -> Failures:
        groups = api.grouped_chunks(
            ((bool(c.after["whitelist_mode"]), c) for c in changes), api.WHITE_MODE_SET.per_call
        )

        def call(on: bool, chunk: list[Change]) -> None:
            body = {"userId": _uids(chunk), "whiteSetting": "1" if on else "0"}
            self.client.call(api.WHITE_MODE_SET, body)

        def verify(on: bool, chunk: list[Change]) -> set[str]:
            return _done(chunk, lambda uid: self.client.whitelist_mode(uid) == on)

        return self.batches.groups(groups, call, verify)


# ---------------------------------------------------------------------------- reading


def _user(uid: str, push: Push | None, hosted: HostedProfile, detailed: bool, details: Details) -> User:
    """A user found by ``user/get`` (``push``) or in the soft-deleted list (no push)."""
    # The vendor drops a soft-deleted user's push data, and its lists cannot be read
    # (None: unknown, which the planner leaves alone). Its name and avatar are read from
    # the hosted profile, where chatroster keeps a copy.
    name, avatar = push if push is not None else hosted.push
    return User(
        uid=uid,
        name=name,
        avatar=avatar,
        tags=details.tags.get(uid, ()) if detailed else None,
        profile=hosted.profile if detailed else None,
        active=push is not None,
        blocklist=details.blocklists.get(uid),
        whitelist=details.whitelists.get(uid),
        whitelist_mode=details.modes.get(uid),
        tokens_valid_after=hosted.tokens_valid_after,
        owner=hosted.owner,
        digest=hosted.digest,
    )


def _trusted(scope: Scope, listed: dict[str, HostedProfile], deleted: set[str]) -> set[str]:
    """Declared users whose recorded digest (in the hosted profile) is their declaration's."""
    digests = scope.digests or {}
    return {
        uid
        for uid in scope.uids
        if uid in listed and uid not in deleted and digests.get(uid) and listed[uid].digest == digests[uid]
    }


def _owned_user(uid: str, hosted: HostedProfile, active: bool) -> User:
    """A user known from ``profile/list`` alone: an owned user the manifest does not
    declare, or a trusted one (its name and avatar from the copy kept in the profile)."""
    name, avatar = hosted.push
    return User(
        uid=uid,
        name=name,
        avatar=avatar,
        profile=hosted.profile,
        active=active,
        tokens_valid_after=hosted.tokens_valid_after,
        owner=hosted.owner,
        digest=hosted.digest,
    )


# ---------------------------------------------------------------------------- helpers


def _edit_for_update(change: Change, hosted: HostedProfile) -> HostedProfile:
    if "profile" in change.after:
        hosted = hosted.with_profile(change.after["profile"] or {})
    return hosted.with_push(change.after)


def _having(changes: Sequence[Change], *names: str) -> list[Change]:
    return [c for c in changes if any(name in c.after for name in names)]


def _uids(chunk: Sequence[Change]) -> list[str]:
    return [change.uid for change in chunk]


def _done(chunk: Sequence[Change], done: Callable[[str], bool]) -> set[str]:
    return {change.key for change in chunk if done(change.uid)}
