"""`CometChatProvider`: what to read for a `Scope`, and which calls carry out each action.

Reading: both user listings, then the blocklists the scope manages. Two listings rather
than one ``withDeactivated`` listing because nothing documented on a row says whether
that user is deactivated (``deactivatedAt`` is an SDK field, unverified on REST); split
this way they cost at most one call more than a single listing.

Writing: create/update/adopt/delete/flush one call per user, run concurrently;
deactivate and reactivate 25 uids a call; block and unblock one call per blocker. Roles
are read in one call and written one call per role (`roles.py`).

The ownership marker (`api.MARKER_KEY`) rides in each user's metadata; the provider
keeps the raw metadata it has seen, so that writing the marker keeps the rest of it.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from ...changes import Action, Change
from ...errors import CometChatError, ProviderError
from ...http import HttpClient, run_concurrently
from ...model import ProviderConfig, State, User
from .. import CAPABILITIES
from ..base import DigestEntry, Presence, Provider, Scope
from ..batches import raise_if
from .api import (
    BLOCK_CHUNK,
    BULK_MAX,
    MARKER_KEY,
    _user_from_api,
    _user_to_api,
    chunked,
    marker_from_api,
    presence_from_api,
    to_epoch,
)
from .batches import Batches, Outcome, block_problem, problem
from .client import DEFAULT_CONCURRENCY, DEFAULT_HTTP, CometChatClient, HttpOptions, Settings
from .roles import Roles

#: What a trusted user (``--refresh changed``) is not read for: its blocklist, the one
#: per-user read; the user pages give everything else.
TRUSTED_UNREAD = frozenset({"blocklist"})


def open_cometchat(
    config: ProviderConfig,
    *,
    concurrency: int | None = None,
    http: HttpOptions = DEFAULT_HTTP,
) -> CometChatProvider:
    """The provider a manifest's ``provider`` section names; fails before any request
    when a setting is missing. ``concurrency`` is apply's --concurrency (default 8)."""
    return CometChatProvider(
        Settings.from_config(config), concurrency=concurrency or DEFAULT_CONCURRENCY, http=http
    )


class CometChatProvider(Provider):
    type = "cometchat"
    capabilities = CAPABILITIES["cometchat"]
    concurrent_writes = True

    def __init__(
        self,
        settings: Settings,
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        http: HttpOptions = DEFAULT_HTTP,
    ) -> None:
        self.settings = settings
        self.concurrency = max(1, concurrency)
        self.client = CometChatClient(settings, concurrency=self.concurrency, http=http)
        self.batches = Batches(self.concurrency)
        self.roles = Roles(self.client)
        # Raw metadata (marker included) of the users seen, for the read-modify-write of
        # the marker; filled by `read`, fetched for a user not seen.
        self._metadata: dict[str, dict[str, Any]] = {}
        # Users this provider created deactivated: their blocks (planned after creation)
        # need them active for a moment, which is harmless as they have no tokens yet.
        self._created_inactive: set[str] = set()
        # Digests written with the user's one change of this apply (`carry_digests`).
        self._carried: dict[str, str] = {}
        self._lock = threading.Lock()

    def identity(self) -> dict[str, Any]:
        return {"type": self.type, "app_id": self.settings.app_id, "url": self.settings.base_url}

    @property
    def http(self) -> HttpClient:
        """The HTTP client underneath (its rate limiters and counters)."""
        return self.client.http

    def close(self) -> None:
        self.client.close()

    def presence(self, uids: Sequence[str]) -> dict[str, Presence]:
        """``status`` and ``lastActiveAt`` of ``GET /users/{uid}``; a deactivated user
        (``ERR_UID_NOT_FOUND``: the vendor hides it) is unknown."""

        def get(uid: str) -> Presence:
            try:
                row = self.client.user(uid)
            except CometChatError as exc:
                if exc.code == "ERR_UID_NOT_FOUND":
                    return Presence()
                raise
            return presence_from_api(row)

        found: dict[str, Presence] = {}
        for uid, outcome in run_concurrently(get, uids, self.concurrency):
            if isinstance(outcome, BaseException):
                raise outcome
            found[uid] = outcome
        return found

    # ------------------------------------------------------------------------- read

    def read(self, scope: Scope) -> State:
        users: dict[str, User] = {}
        for row, user in self._all_users():
            if scope.everything or self._in_scope(user, scope):
                users[user.uid] = user
                self._remember(user.uid, row.get("metadata"))
        # --refresh changed: a user whose recorded digest is its declaration's is not
        # read per user; everything but its blocklist came with the user pages.
        digests = {} if scope.everything or scope.digests is None else scope.digests
        trusted = {
            uid
            for uid, digest in digests.items()
            if uid in users and users[uid].active and users[uid].digest == digest
        }
        managed = users if scope.everything else scope.blocklists
        # Deactivated users answer as not found under /users/{uid}: their blocks are
        # kept, but cannot be read until they are reactivated (left unknown: None).
        blockers = [uid for uid in managed if uid in users and users[uid].active and uid not in trusted]
        blocklists = self.client.blocklists(blockers, self.tally("blocklists", len(blockers)))
        for uid, blocked in blocklists.items():
            users[uid] = users[uid].evolve(blocklist=blocked)
        # CometChat has no app-level bans: always none.
        return State(
            users=users, bans={}, roles=self.roles.read(), trusted=dict.fromkeys(trusted, TRUSTED_UNREAD)
        )

    def carry_digests(self, digests: Mapping[str, tuple[Change, str]]) -> frozenset[str]:
        """Create, update and adopt are one call each, which carries the marker; not a
        create followed by a token flush or a deactivation."""
        self._carried = {
            uid: digest
            for uid, (change, digest) in digests.items()
            if change.action in (Action.UPDATE_USER, Action.ADOPT_USER)
            or (
                change.action is Action.CREATE_USER
                and change.after.get("tokens_valid_after") is None
                and change.after.get("active") is not False
            )
        }
        return frozenset(self._carried)

    def record_digests(self, entries: Sequence[DigestEntry]) -> dict[str, str]:
        """One ``PUT /users/{uid}`` per user: its metadata as last seen, with the digest
        in the marker (``""``: taken out); none when the marker already says so."""

        def write(entry: DigestEntry) -> None:
            metadata = self._current_metadata(entry.uid)
            before = marker_from_api(metadata.pop(MARKER_KEY, None))
            after = {key: value for key, value in before.items() if key != "digest"}
            if entry.digest:
                after["digest"] = entry.digest
            if after != before:
                data = self.client.call("PUT", f"/users/{entry.uid}", json=_user_to_api({}, after, metadata))
                self._remember(entry.uid, data.get("metadata"))

        failed: dict[str, str] = {}
        for entry, outcome in run_concurrently(write, entries, self.concurrency):
            if isinstance(outcome, BaseException):
                failed[entry.uid] = str(outcome)
        return failed

    @staticmethod
    def _in_scope(user: User, scope: Scope) -> bool:
        return (
            user.uid in scope.uids
            or user.uid in scope.extra_uids
            or (scope.owned and user.owner == scope.owner)
        )

    def _all_users(self) -> Iterator[tuple[dict[str, Any], User]]:
        """Every user of the app, as the vendor's row and as a `User`."""
        for active in (True, False):
            tally = self.tally("active users" if active else "deactivated users")
            for row in self.client.users(active=active, tally=tally):
                yield row, _user_from_api(row, active=active)

    # ----------------------------------------------------------- marker bookkeeping

    def _remember(self, uid: str, metadata: Any) -> None:
        with self._lock:
            self._metadata[uid] = dict(metadata) if isinstance(metadata, Mapping) else {}

    def _current_metadata(self, uid: str) -> dict[str, Any]:
        """The user's raw metadata, marker included: as last read, or fetched."""
        with self._lock:
            known = self._metadata.get(uid)
        if known is None:
            data = self.client.user(uid)
            self._remember(uid, data.get("metadata"))
            known = dict(data.get("metadata") or {})
        return dict(known)

    def _write_marker(self, uid: str, **marker: Any) -> Outcome:
        """Merge ``marker`` into the user's marker, keeping the rest of its metadata."""
        metadata = self._current_metadata(uid)
        merged = {**marker_from_api(metadata.pop(MARKER_KEY, None)), **marker}
        data = self.client.call("PUT", f"/users/{uid}", json=_user_to_api({}, merged, metadata))
        self._remember(uid, data.get("metadata"))
        return None

    # ------------------------------------------------------------------------ write

    def create_users(self, changes: Sequence[Change]) -> None:
        failed = self.batches.each(changes, self._create)
        inactive = [c for c in changes if c.after.get("active") is False and c.key not in failed]
        failed.update(self._bulk_active(inactive, active=False))
        self._created_inactive.update(c.uid for c in inactive if c.key not in failed)
        raise_if(failed)

    def adopt_users(self, changes: Sequence[Change]) -> None:
        raise_if(self.batches.each(changes, self._adopt))

    def update_users(self, changes: Sequence[Change]) -> None:
        raise_if(self.batches.each(changes, self._update))

    def deactivate_users(self, changes: Sequence[Change]) -> None:
        raise_if(self._bulk_active(changes, active=False))

    def reactivate_users(self, changes: Sequence[Change]) -> None:
        raise_if(self._bulk_active(changes, active=True))

    def delete_users(self, changes: Sequence[Change]) -> None:
        raise_if(self.batches.each(changes, self._delete))

    def add_blocks(self, changes: Sequence[Change]) -> None:
        # The vendor refuses blocks by a deactivated user; one created deactivated in
        # this run is reactivated for the call (the planner puts blocks after creation).
        waking = sorted({c.uid for c in changes} & self._created_inactive)
        if not waking:
            raise_if(self._blocks(changes, "POST"))
            return
        self._set_active(waking, True)
        try:
            failed = self._blocks(changes, "POST")
        finally:
            self._set_active(waking, False)
        raise_if(failed)

    def remove_blocks(self, changes: Sequence[Change]) -> None:
        raise_if(self._blocks(changes, "DELETE"))

    def expire_tokens(self, changes: Sequence[Change]) -> None:
        raise_if(self.batches.each(changes, self._expire))

    def create_roles(self, changes: Sequence[Change]) -> None:
        raise_if(self.batches.each(changes, self.roles.create))

    def update_roles(self, changes: Sequence[Change]) -> None:
        raise_if(self.batches.each(changes, self.roles.update))

    def delete_roles(self, changes: Sequence[Change]) -> None:
        raise_if(self.batches.each(changes, self.roles.delete))

    # One function per action; each returns why its change failed, or None.

    def _create(self, change: Change) -> Outcome:
        after = change.after
        marker = {"owner": after["owner"]}
        if change.uid in self._carried:
            marker["digest"] = self._carried[change.uid]
        if after.get("tokens_valid_after") is not None:
            marker["tokens_valid_after"] = to_epoch(after["tokens_valid_after"])
        body = {"uid": change.uid, **_user_to_api(after, marker, {})}
        try:
            data = self.client.call("POST", "/users", json=body, core=True)
        except CometChatError as exc:
            if exc.code != "ERR_UID_ALREADY_EXISTS":
                raise
            return self._verify_created(change.uid, after["owner"])
        self._remember(change.uid, data.get("metadata"))
        if "tokens_valid_after" in marker:
            self.client.call("DELETE", f"/users/{change.uid}/auth_tokens")
        return None

    def _verify_created(self, uid: str, owner: str) -> Outcome:
        """After "already exists": done if the user carries our marker (an earlier attempt
        of this very request succeeded), else a failure that says what to do."""
        try:
            metadata = self._current_metadata(uid)
        except CometChatError as exc:
            if exc.code != "ERR_UID_NOT_FOUND":
                raise
            return f"'{uid}' already exists on CometChat as a deactivated user; run plan again"
        if marker_from_api(metadata.get(MARKER_KEY)).get("owner") == owner:
            return None
        return f"'{uid}' already exists on CometChat and is not owned by '{owner}'; run plan again"

    def _adopt(self, change: Change) -> Outcome:
        carried = {"digest": self._carried[change.uid]} if change.uid in self._carried else {}
        return self._write_marker(change.uid, owner=change.after["owner"], **carried)

    def _update(self, change: Change) -> Outcome:
        fields = change.after
        if change.uid in self._carried:
            # The marker rides along with the digest: the metadata is written whole.
            metadata = self._current_metadata(change.uid)
            marker = {**marker_from_api(metadata.pop(MARKER_KEY, None)), "digest": self._carried[change.uid]}
            data = self.client.call(
                "PUT", f"/users/{change.uid}", json=_user_to_api(fields, marker, metadata)
            )
            self._remember(change.uid, data.get("metadata"))
            return None
        # New metadata replaces the old as a whole, so the current marker is merged in.
        marker = {}
        if "metadata" in fields:
            marker = marker_from_api(self._current_metadata(change.uid).get(MARKER_KEY))
        body = _user_to_api(fields, marker, None)
        if body:
            data = self.client.call("PUT", f"/users/{change.uid}", json=body)
            self._remember(change.uid, data.get("metadata"))
        return None

    def _delete(self, change: Change) -> Outcome:
        try:
            self.client.call("DELETE", f"/users/{change.uid}", json={"permanent": True}, core=True)
        except CometChatError as exc:
            # Gone already: a retried delete whose first attempt succeeded.
            if exc.code != "ERR_UID_NOT_FOUND":
                raise
        return None

    def _expire(self, change: Change) -> Outcome:
        # Flush first, then record the watermark: if the second step fails, the next
        # plan flushes again, which is harmless.
        watermark = to_epoch(change.after["tokens_valid_after"])
        self.client.call("DELETE", f"/users/{change.uid}/auth_tokens")
        return self._write_marker(change.uid, tokens_valid_after=watermark)

    def _set_active(self, uids: Sequence[str], active: bool) -> None:
        """Deactivate or reactivate users outside any change (all or nothing)."""
        changes = [Change(Action.UPDATE_USER, uid) for uid in uids]
        failed = self._bulk_active(changes, active=active)
        if failed:
            raise ProviderError("; ".join(sorted(failed.values())))

    def _bulk_active(self, changes: Sequence[Change], *, active: bool) -> dict[str, str]:
        """Deactivate or reactivate 25 uids a call; a uid the vendor does not name back
        in its answer failed (it does not exist)."""
        key, answer = (
            ("uidsToActivate", "nonDeactivatedUids") if active else ("uidsToDeactivate", "deactivatedUids")
        )
        method = "PUT" if active else "DELETE"
        by_uid = {change.uid: change for change in changes}

        def send(uids: list[str]) -> set[str]:
            data = self.client.call(method, "/users", json={key: uids})
            return {str(uid).lower() for uid in (data or {}).get(answer, [])}

        failed: dict[str, str] = {}
        for uids, outcome in run_concurrently(send, chunked(list(by_uid), BULK_MAX), self.concurrency):
            for uid in uids:
                if isinstance(outcome, BaseException):
                    why = problem(uid, outcome)
                elif uid not in outcome:
                    why = f"CometChat did not {'re' if active else 'de'}activate '{uid}'"
                else:
                    continue
                failed[by_uid[uid].key] = why or "failed"
        return failed

    def _blocks(self, changes: Sequence[Change], method: str) -> dict[str, str]:
        """Block or unblock, one call per blocker (more only past `BLOCK_CHUNK` targets).
        A target the vendor reports as failed fails alone, unless the vendor says it is
        already in the wanted state."""
        by_blocker: dict[str, dict[str, Change]] = defaultdict(dict)
        for change in changes:
            by_blocker[change.uid][change.target or ""] = change
        calls = [
            (uid, chunk)
            for uid, targets in by_blocker.items()
            for chunk in chunked(list(targets), BLOCK_CHUNK)
        ]

        def send(call: tuple[str, list[str]]) -> Any:
            uid, targets = call
            return self.client.call(method, f"/users/{uid}/blockedusers", json={"blockedUids": targets})

        failed: dict[str, str] = {}
        for (uid, targets), outcome in run_concurrently(send, calls, self.concurrency):
            for target in targets:
                why = block_problem(uid, target, outcome)
                if why is not None:
                    failed[by_blocker[uid][target].key] = why
        return failed
