"""Nexconn friends (information hosting, reference §6): the endpoints, the translation
between the model and the vendor's JSON, the reads, and the friend actions.

Reads cost one paged ``friend/list`` (100 a page) per user whose ``friends`` the
manifest manages, and one ``friend/permission/get`` per 100 users that declare a
``friend_permission``. Writes: ``friend/add`` with ``action: 2`` (added directly, not
a request the friend has to accept) and, when the change sets an alias or ext,
``friend/profile/set``; ``friend/remove`` for up to 100 friends of one user a call;
``friend/permission/set`` for up to 100 users with the same permission a call.
Friendship is mutual (see `chatroster.friendship`), so one add or remove serves both.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ...changes import Change
from ...http import run_concurrently
from ...model import User
from ..base import Scope, Tally
from ..batches import Failures
from . import api
from .batches import Batches
from .client import NexconnClient

FRIEND_ADD, FRIEND_REMOVE, FRIEND_PROFILE_SET = api.FRIEND_ADD, api.FRIEND_REMOVE, api.FRIEND_PROFILE_SET
FRIEND_LIST, PERMISSION_SET, PERMISSION_GET = (
    api.FRIEND_LIST,
    api.FRIEND_PERMISSION_SET,
    api.FRIEND_PERMISSION_GET,
)

ADD_DIRECTLY = 2
"""``friend/add`` ``action``: 1 would send a request the friend's permission governs."""

#: The model's friend permissions and the vendor's ``permissionType``.
PERMISSIONS = {"anyone": 1, "approval": 2, "nobody": 3}
PERMISSION_NAMES = {number: name for name, number in PERMISSIONS.items()}

Friends = dict[str, dict[str, Any]]


# ---------------------------------------------------------------------- translation


def friend_from_api(item: Mapping[str, Any]) -> dict[str, Any]:
    """One ``friend/list`` entry as what the user keeps about the friend."""
    ext = item.get("friendExtProfile") or {}
    return {"alias": item.get("alias") or "", "ext": {key: str(value) for key, value in ext.items()}}


def profile_to_api(change: Change) -> dict[str, Any]:
    """The ``friend/profile/set`` body for a change: the alias (omitted: cleared) and ext."""
    body: dict[str, Any] = {"userId": change.uid, "targetId": str(change.target)}
    alias, ext = change.after.get("alias") or "", change.after.get("ext") or {}
    if not isinstance(alias, str) or not all(isinstance(value, str) for value in ext.values()):
        raise ValueError(f"{change.key}: a friend's alias and ext values must be text")
    if alias:
        body["alias"] = alias
    body["friendExtProfile"] = dict(ext)
    return body


def permission_to_api(change: Change) -> int:
    name = change.after.get("friend_permission")
    if name not in PERMISSIONS:
        raise ValueError(f"{change.key}: friend_permission {name!r} is not one of {', '.join(PERMISSIONS)}")
    return PERMISSIONS[name]


# ---------------------------------------------------------------------------- reads


def friend_list(client: NexconnClient, uid: str) -> Friends:
    body = {"userId": uid, "pageSize": FRIEND_LIST.per_call, "order": 0}
    return {
        item["userId"]: friend_from_api(item) for item in client.cursor_pages(FRIEND_LIST, "friends", body)
    }


def permissions(client: NexconnClient, uids: list[str]) -> dict[str, str]:
    found = client.call(PERMISSION_GET, {"userIds": uids})
    return {
        item["userId"]: PERMISSION_NAMES.get(int(item["permissionType"]), "anyone")
        for item in found.get("permissions") or []
    }


def read(
    client: NexconnClient,
    listed: Collection[str],
    permitted: Collection[str],
    new_tally: Callable[[int], Tally],
) -> tuple[dict[str, Friends], dict[str, str]]:
    """The friends of the ``listed`` users and the permission of the ``permitted`` ones,
    concurrently, counted on the tally ``new_tally`` makes for the number of calls (none
    when there is nothing to read); any failure fails the read (no plan on half data)."""
    friends: dict[str, Friends] = {}
    found: dict[str, str] = {}
    jobs: list[tuple[str, Any]] = [("list", uid) for uid in sorted(listed)]
    jobs += [("permission", part) for part in api.chunked(sorted(permitted), PERMISSION_GET.per_call)]
    if not jobs:
        return friends, found
    tally = new_tally(len(jobs))

    def run(job: tuple[str, Any]) -> None:
        kind, what = job
        if kind == "list":
            friends[what] = friend_list(client, what)
        else:
            found.update(permissions(client, what))
        tally.add()

    for _, outcome in run_concurrently(run, jobs, client.concurrency):
        if isinstance(outcome, BaseException):
            raise outcome
    return friends, found


# --------------------------------------------------------------------------- writes


class NexconnFriends:
    """The friend reads and actions of `NexconnProvider` (a mixin: it gives the client,
    the batches and its tallies)."""

    client: NexconnClient
    batches: Batches

    if TYPE_CHECKING:  # given by `Provider`; no stub at run time, which would shadow it

        def tally(self, what: str, total: int | None = None) -> Tally: ...

    def _read_friends(self, users: dict[str, User], readable: set[str], scope: Scope) -> None:
        """Friends and permissions of the ``readable`` (active) users the scope asks for;
        the others keep ``None`` (unmanaged, or unreadable)."""
        listing = {uid for uid in readable if scope.everything or uid in scope.friends}
        asking = {uid for uid in readable if scope.everything or uid in scope.friend_permissions}
        found, permitted = read(
            self.client, listing, asking, lambda calls: self.tally("calls for friends", calls)
        )
        for uid in listing | asking:
            users[uid] = users[uid].evolve(friends=found.get(uid), friend_permission=permitted.get(uid))

    def add_friends(self, changes: Sequence[Change]) -> None:
        self.batches.pipeline(
            changes,
            [
                lambda batch: self.batches.each(batch, self._add),
                lambda batch: self.batches.each(
                    [c for c in batch if c.after.get("alias") or c.after.get("ext")], self._set_profile
                ),
            ],
        )

    def update_friends(self, changes: Sequence[Change]) -> None:
        self.batches.pipeline(changes, [lambda batch: self.batches.each(batch, self._set_profile)])

    def remove_friends(self, changes: Sequence[Change]) -> None:
        groups = api.grouped_chunks(((c.uid, c) for c in changes), FRIEND_REMOVE.per_call)

        def call(uid: str, chunk: list[Change]) -> None:
            self.client.call(FRIEND_REMOVE, {"userId": uid, "targetIds": [str(c.target) for c in chunk]})

        def verify(uid: str, chunk: list[Change]) -> set[str]:
            found = friend_list(self.client, uid)
            return {c.key for c in chunk if c.target not in found}

        self.batches.pipeline(changes, [lambda _: self.batches.groups(groups, call, verify)])

    def set_friend_permissions(self, changes: Sequence[Change]) -> None:
        self.batches.pipeline(changes, [self._set_permissions])

    def _add(self, change: Change) -> None:
        body = {"userId": change.uid, "targetId": str(change.target), "action": ADD_DIRECTLY}
        self.client.call(FRIEND_ADD, body)

    def _set_profile(self, change: Change) -> None:
        self.client.call(FRIEND_PROFILE_SET, profile_to_api(change))

    def _set_permissions(self, changes: list[Change]) -> Failures:
        groups = api.grouped_chunks(((permission_to_api(c), c) for c in changes), PERMISSION_SET.per_call)

        def call(permission: int, chunk: list[Change]) -> None:
            self.client.call(
                PERMISSION_SET, {"userIds": [c.uid for c in chunk], "permissionType": permission}
            )

        def verify(permission: int, chunk: list[Change]) -> set[str]:
            found = permissions(self.client, [c.uid for c in chunk])
            return {c.key for c in chunk if found.get(c.uid) == PERMISSION_NAMES[permission]}

        return self.batches.groups(groups, call, verify)
