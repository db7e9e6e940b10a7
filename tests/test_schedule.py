"""Apply on lanes: what each change waits for (`chatroster.schedule`), and the executor
that runs every action at once (`chatroster.apply`, for `concurrent_writes` providers).

The executor runs against `Platform`, a small in-memory platform that refuses what a
real one refuses (a block by or of a user that does not exist, a change to a user
that is gone) and records each call; it is a platform, not a stand-in for chatroster's
own code. That two lanes really are in flight together is shown with a barrier that
opens only when both calls wait at it (no clock involved: a sequential apply would
break it). The vendor providers run on lanes through the emulator in the provider,
fault and kill tests.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import pytest

from chatroster.apply import apply
from chatroster.changes import ORDER, Action, Change, ordered
from chatroster.errors import ApplyError, PartialFailure
from chatroster.model import State
from chatroster.providers.base import Provider, Scope
from chatroster.schedule import CLASSIFIED, segments


def create(uid: str) -> Change:
    return Change(Action.CREATE_USER, uid, after={"name": uid, "owner": "team"})


def block(uid: str, target: str) -> Change:
    return Change(Action.ADD_BLOCK, uid, target=target, before={"blocked": False}, after={"blocked": True})


def unblock(uid: str, target: str) -> Change:
    return Change(Action.REMOVE_BLOCK, uid, target=target, before={"blocked": True}, after={"blocked": False})


def update(uid: str, name: str) -> Change:
    return Change(Action.UPDATE_USER, uid, before={"name": uid}, after={"name": name})


def deactivate(uid: str) -> Change:
    return Change(Action.DEACTIVATE_USER, uid, before={"active": True}, after={"active": False})


class Platform(Provider):
    """Users and blocks in memory; every write checks what the vendors check."""

    type = "memory"
    concurrent_writes = True

    def __init__(self, users: Sequence[str] = (), *, batch_size: int = 500, refuse: Sequence[str] = ()):
        self.users = {uid: {"name": uid, "active": True} for uid in users}
        self.blocks: set[tuple[str, str]] = set()
        self.calls: list[tuple[Action, tuple[str, ...]]] = []
        self.batch_size = batch_size
        self.refuse = set(refuse)
        self.barrier: threading.Barrier | None = None
        self.meet: set[Action] = set()
        self.lock = threading.Lock()

    def identity(self) -> dict[str, Any]:
        return {"type": self.type}

    def read(self, scope: Scope) -> State:
        raise NotImplementedError("not read here")

    def _call(self, action: Action, changes: Sequence[Change]) -> None:
        if action in self.meet and self.barrier is not None:
            self.barrier.wait()
        with self.lock:
            self.calls.append((action, tuple(change.key for change in changes)))

    def _exists(self, uid: str) -> bool:
        return uid in self.users and bool(self.users[uid]["active"])

    def create_users(self, changes: Sequence[Change]) -> None:
        self._call(Action.CREATE_USER, changes)
        failed = {c.key: "refused by the platform" for c in changes if c.uid in self.refuse}
        for change in changes:
            if change.key not in failed:
                self.users[change.uid] = {"name": change.after["name"], "active": True}
        if failed:
            raise PartialFailure(failed)

    def update_users(self, changes: Sequence[Change]) -> None:
        self._call(Action.UPDATE_USER, changes)
        for change in changes:
            assert self._exists(change.uid), f"update of {change.uid}, which does not exist"
            self.users[change.uid]["name"] = change.after["name"]

    def add_blocks(self, changes: Sequence[Change]) -> None:
        self._call(Action.ADD_BLOCK, changes)
        for change in changes:
            assert change.target is not None
            assert self._exists(change.uid) and self._exists(change.target), f"{change.key}: no such user"
            self.blocks.add((change.uid, change.target))

    def remove_blocks(self, changes: Sequence[Change]) -> None:
        self._call(Action.REMOVE_BLOCK, changes)
        for change in changes:
            assert change.target is not None
            self.blocks.discard((change.uid, change.target))

    def deactivate_users(self, changes: Sequence[Change]) -> None:
        self._call(Action.DEACTIVATE_USER, changes)
        for change in changes:
            self.users[change.uid]["active"] = False


# ------------------------------------------------------------------ what waits


def test_every_action_is_classified_or_keeps_the_plan_order() -> None:
    # A newer action not classified in schedule.py is a barrier: safe by default.
    assert set(ORDER) >= CLASSIFIED


def test_one_segment_when_every_action_is_classified() -> None:
    plan = ordered([create("a"), block("b", "a"), update("c", "C"), deactivate("d")])
    assert len(segments(plan)) == 1


def test_a_block_waits_for_its_target_to_exist_and_then_goes_with_its_siblings() -> None:
    (segment,) = segments(ordered([create("new"), block("b", "new"), block("b", "old"), block("c", "old")]))
    assert segment.waits["add_block:b:new"] == segment.waits["add_block:b:old"]
    assert ("targets", "b", Action.ADD_BLOCK) in segment.waits["add_block:b:old"]
    assert ("targets", "b", Action.ADD_BLOCK) in segment.members["create_user:new"]
    assert segment.waits["add_block:c:old"][:2] == [("exists", "c"), ("exists", "old")]


def test_removals_before_additions_and_deactivation_after_everything_naming_the_user() -> None:
    (segment,) = segments(ordered([unblock("a", "x"), block("a", "y"), block("b", "a"), deactivate("a")]))
    remove_gate = segment.members["remove_block:a:x"]
    assert any(gate in segment.waits["add_block:a:y"] for gate in remove_gate)
    for key in ("remove_block:a:x", "add_block:a:y", "add_block:b:a"):
        assert ("named", "a") in segment.members[key]
    assert segment.waits["deactivate_user:a"] == [("named", "a")]


# -------------------------------------------------------------------- the lanes


def test_independent_actions_are_in_flight_together() -> None:
    platform = Platform(["a", "b", "c"])
    platform.barrier = threading.Barrier(2, timeout=10)
    platform.meet = {Action.UPDATE_USER, Action.ADD_BLOCK}
    result = apply(ordered([update("a", "A"), block("b", "c")]), platform)
    assert result.done == 2 and not platform.barrier.broken


def test_what_depends_on_a_create_runs_after_it_and_everything_lands() -> None:
    plan = ordered(
        [create(f"n{i}") for i in range(30)]
        + [block(f"n{i}", f"n{(i + 1) % 30}") for i in range(30)]
        + [block("old", f"n{i}") for i in range(30)]
        + [update("old", "Old")]
    )
    platform = Platform(["old"], batch_size=7)
    result = apply(plan, platform)
    assert result.done == len(plan) and not result.failures
    assert platform.blocks == {(f"n{i}", f"n{(i + 1) % 30}") for i in range(30)} | {
        ("old", f"n{i}") for i in range(30)
    }
    # old's blocks wait for all of their targets together (created in five batches),
    # so that a provider can write them in as few calls as the batch size allows.
    creates = [i for i, (action, _) in enumerate(platform.calls) if action is Action.CREATE_USER]
    olds = [i for i, (_, keys) in enumerate(platform.calls) if any(":old:" in key for key in keys)]
    assert len(creates) == 5 and min(olds) > max(creates)


def test_a_failed_create_leaves_what_needs_it_unattempted_and_the_rest_done() -> None:
    plan = ordered(
        [create("bad"), create("good"), block("good", "bad"), block("x", "good"), update("x", "X")]
    )
    platform = Platform(["x"], refuse=["bad"])
    with pytest.raises(ApplyError) as raised:
        apply(plan, platform, continue_on_error=True)
    failures = dict(raised.value.failures)
    assert failures == {
        "create_user:bad": "refused by the platform",
        "add_block:good:bad": "not attempted: create_user:bad failed",
    }
    assert platform.blocks == {("x", "good")} and platform.users["x"]["name"] == "X"


def test_without_continue_on_error_no_new_batch_starts_after_a_failure() -> None:
    plan = ordered([create("bad"), create("later")])
    platform = Platform(refuse=["bad"], batch_size=1)
    with pytest.raises(ApplyError) as raised:
        apply(plan, platform)
    assert dict(raised.value.failures) == {"create_user:bad": "refused by the platform"}
    assert "later" not in platform.users
    assert [keys for _, keys in platform.calls] == [("create_user:bad",)]


def test_a_stop_request_lets_the_batches_in_flight_finish_and_reports_the_rest() -> None:
    from chatroster.apply import Stop
    from chatroster.errors import Interrupted

    stop = Stop()
    plan = ordered([create(f"u{i}") for i in range(5)])

    class Stopping(Platform):
        def create_users(self, changes: Sequence[Change]) -> None:
            super().create_users(changes)
            stop.request()  # as the first Ctrl-C would, while this batch is in flight

    platform = Stopping(batch_size=2)
    with pytest.raises(Interrupted) as raised:
        apply(plan, platform, stop=stop)
    assert raised.value.done == 2 and raised.value.total == 5
    assert sorted(platform.users) == ["u0", "u1"]


def test_role_changes_keep_the_plan_order_against_the_users_that_hold_them() -> None:
    # Roles are not classified in schedule.py: a role exists before any user is created
    # with it, and is deleted only once every user change has settled.
    plan = ordered(
        [
            Change(Action.CREATE_ROLE, "agent", after={"name": "agent"}),
            create("a"),
            block("a", "b"),
            Change(Action.DELETE_ROLE, "old", before={"name": "old"}),
        ]
    )
    parts = segments(plan)
    assert [[change.action for change in part.changes] for part in parts] == [
        [Action.CREATE_ROLE],
        [Action.CREATE_USER, Action.ADD_BLOCK],
        [Action.DELETE_ROLE],
    ]
