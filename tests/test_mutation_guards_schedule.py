"""What each change of a plan waits for, spelled out whole (docs/mutation.md).

test_schedule.py checks the rules by example, a gate at a time; here one plan that uses
every classified action is cut and gated, and every change's gates are compared in full,
so that a gate added, dropped or mistaken anywhere in `chatroster.schedule` is seen.
"""

from __future__ import annotations

from chatroster.changes import Action, Change, ordered
from chatroster.schedule import SAME_OBJECT, segments

USER, BLOCKS, WHITELIST, BANS = SAME_OBJECT


def change(action: Action, uid: str, target: str | None = None) -> Change:
    return Change(action, uid, target=target)


def every_classified_action() -> tuple[Change, ...]:
    # n is created and r reactivated in the plan; a and w exist already.
    return ordered(
        [
            change(Action.CREATE_USER, "n"),
            change(Action.REACTIVATE_USER, "r"),
            change(Action.ADOPT_USER, "a"),
            change(Action.UPDATE_USER, "a"),
            change(Action.UNBAN_USER, "a"),
            change(Action.BAN_USER, "a"),
            change(Action.REMOVE_BLOCK, "a", "x"),
            change(Action.ADD_BLOCK, "a", "n"),
            change(Action.ADD_BLOCK, "a", "y"),
            change(Action.SET_WHITELIST_MODE, "w"),
            change(Action.REMOVE_WHITELIST, "w", "r"),
            change(Action.ADD_WHITELIST, "w", "w"),
            change(Action.EXPIRE_TOKENS, "a"),
            change(Action.DEACTIVATE_USER, "a"),
            change(Action.DELETE_USER, "a"),
        ]
    )


def test_every_gate_each_change_waits_on() -> None:
    (segment,) = segments(every_classified_action())
    assert segment.waits == {
        "create_user:n": [],
        "reactivate_user:r": [],
        "adopt_user:a": [("exists", "a")],
        "update_user:a": [("exists", "a"), ("object", "a", USER, 0)],
        "unban_user:a": [("exists", "a")],
        "ban_user:a": [("exists", "a"), ("object", "a", BANS, 0)],
        "remove_block:a:x": [("exists", "a"), ("exists", "x")],
        "add_block:a:n": [("exists", "a"), ("targets", "a", Action.ADD_BLOCK), ("object", "a", BLOCKS, 0)],
        "add_block:a:y": [("exists", "a"), ("targets", "a", Action.ADD_BLOCK), ("object", "a", BLOCKS, 0)],
        "set_whitelist_mode:w": [("exists", "w")],
        "remove_whitelist:w:r": [
            ("exists", "w"),
            ("targets", "w", Action.REMOVE_WHITELIST),
            ("object", "w", WHITELIST, 0),
        ],
        "add_whitelist:w:w": [("exists", "w"), ("object", "w", WHITELIST, 0), ("object", "w", WHITELIST, 1)],
        "expire_tokens:a": [("exists", "a"), ("object", "a", USER, 0), ("object", "a", USER, 1)],
        "deactivate_user:a": [("named", "a")],
        "delete_user:a": [("named", "a"), ("deactivated", "a")],
    }


def test_every_gate_each_change_counts_towards() -> None:
    (segment,) = segments(every_classified_action())
    assert segment.members == {
        "create_user:n": [("exists", "n"), ("named", "n"), ("targets", "a", Action.ADD_BLOCK)],
        "reactivate_user:r": [("exists", "r"), ("named", "r"), ("targets", "w", Action.REMOVE_WHITELIST)],
        "adopt_user:a": [("object", "a", USER, 0), ("named", "a")],
        "update_user:a": [("object", "a", USER, 1), ("named", "a")],
        "unban_user:a": [("object", "a", BANS, 0), ("named", "a")],
        "ban_user:a": [("object", "a", BANS, 1), ("named", "a")],
        "remove_block:a:x": [("object", "a", BLOCKS, 0), ("named", "a"), ("named", "x")],
        "add_block:a:n": [("object", "a", BLOCKS, 1), ("named", "a"), ("named", "n")],
        "add_block:a:y": [("object", "a", BLOCKS, 1), ("named", "a"), ("named", "y")],
        "set_whitelist_mode:w": [("object", "w", WHITELIST, 0), ("named", "w")],
        "remove_whitelist:w:r": [("object", "w", WHITELIST, 1), ("named", "w"), ("named", "r")],
        # a user on its own whitelist is named once
        "add_whitelist:w:w": [("object", "w", WHITELIST, 2), ("named", "w")],
        "expire_tokens:a": [("object", "a", USER, 2), ("named", "a")],
        "deactivate_user:a": [("deactivated", "a")],
        "delete_user:a": [],
    }


def test_a_relation_to_a_user_not_created_here_waits_only_for_that_user() -> None:
    # No target of b's blocks is created in the plan: nothing gathers them.
    (segment,) = segments(ordered([change(Action.CREATE_USER, "n"), change(Action.ADD_BLOCK, "b", "old")]))
    assert segment.waits["add_block:b:old"] == [
        ("exists", "b"),
        ("exists", "old"),
        ("object", "b", BLOCKS, 0),
    ]
    assert segment.members["create_user:n"] == [("exists", "n"), ("named", "n")]


def test_two_users_blocking_one_new_user_each_gather_on_its_creation() -> None:
    (segment,) = segments(
        ordered(
            [
                change(Action.CREATE_USER, "n"),
                change(Action.ADD_BLOCK, "b", "n"),
                change(Action.ADD_BLOCK, "c", "n"),
                change(Action.ADD_BLOCK, "c", "m"),
            ]
        )
    )
    assert segment.members["create_user:n"] == [
        ("exists", "n"),
        ("named", "n"),
        ("targets", "b", Action.ADD_BLOCK),
        ("targets", "c", Action.ADD_BLOCK),
    ]
    assert segment.waits["add_block:c:m"] == [
        ("exists", "c"),
        ("targets", "c", Action.ADD_BLOCK),
        ("object", "c", BLOCKS, 0),
    ]


def test_the_plan_is_cut_at_each_run_of_one_unclassified_action() -> None:
    plan = ordered(
        [
            change(Action.CREATE_ROLE, "r1"),
            change(Action.CREATE_ROLE, "r2"),
            change(Action.UPDATE_ROLE, "r3"),
            change(Action.CREATE_USER, "a"),
            change(Action.ADD_BLOCK, "a", "b"),
            change(Action.REMOVE_FRIEND, "a", "c"),
            change(Action.ADD_FRIEND, "a", "d"),
            change(Action.ADD_FRIEND, "a", "e"),
            change(Action.EXPIRE_TOKENS, "a"),
            change(Action.DELETE_ROLE, "r4"),
        ]
    )
    parts = segments(plan)
    assert [[c.key for c in part.changes] for part in parts] == [
        ["create_role:r1", "create_role:r2"],
        ["update_role:r3"],
        ["create_user:a", "add_block:a:b"],
        ["remove_friend:a:c"],
        ["add_friend:a:d", "add_friend:a:e"],
        ["expire_tokens:a"],
        ["delete_role:r4"],
    ]
    # An unclassified change waits for nothing and opens nothing within its segment:
    # the segment before it has settled.
    assert parts[4].waits == {"add_friend:a:d": [], "add_friend:a:e": []}
    assert parts[4].members == {"add_friend:a:d": [], "add_friend:a:e": []}
    # Gates no change of the segment counts towards are open from the start.
    assert parts[5].waits == {
        "expire_tokens:a": [("exists", "a"), ("object", "a", USER, 0), ("object", "a", USER, 1)]
    }
    assert parts[5].members == {"expire_tokens:a": [("object", "a", USER, 2), ("named", "a")]}


def test_an_empty_plan_has_no_segments() -> None:
    assert segments(()) == []
