"""Safety limits and ownership refusals as their messages state them, found open by
mutation testing (docs/mutation.md): which changes count, at what number a limit is
crossed, and what the user is told.

Plans are built from `Change` values, as the planner returns them: the rules under test
are pure, so no platform is needed. Expected numbers are worked out in each test.
"""

from __future__ import annotations

from typing import Any

import pytest

from chatroster.changes import Action, Change
from chatroster.errors import UnsafePlanError
from chatroster.model import Limit, Policy
from chatroster.plan import Plan
from chatroster.providers.base import Capacity
from chatroster.safety import capacity_reasons, check, conflict_reasons, limit_reasons, overwrites


def plan_of(*changes: Change, managed: int = 10, conflicts: dict[str, str] | None = None) -> Plan:
    owners = conflicts or {}
    return Plan(
        changes=changes, owner="ops", managed=managed, conflicts=tuple(owners), conflict_owners=owners
    )


def many(action: Action, n: int, **values: Any) -> list[Change]:
    return [Change(action, f"u{i}", **values) for i in range(n)]


RENAME = {"before": {"name": "Old"}, "after": {"name": "New"}}

# limit -> (action, verb, what one such change holds)
LIMITS: dict[str, tuple[Action, str, dict[str, Any]]] = {
    "max_deactivate": (Action.DEACTIVATE_USER, "deactivated", {}),
    "max_delete": (Action.DELETE_USER, "deleted", {}),
    "max_unban": (Action.UNBAN_USER, "unbanned", {}),
    "max_update": (Action.UPDATE_USER, "updated", RENAME),
}


def only(name: str, limit: Limit) -> Policy:
    """A policy where only ``name`` can refuse: every other limit allows everything."""
    everything = Limit(percent=100)
    limits = {other: everything for other in LIMITS}
    return Policy(**{**limits, name: limit})


@pytest.mark.parametrize("name", sorted(LIMITS))
def test_a_limit_refuses_one_change_over_it_saying_how_many_and_how_to_override(name: str) -> None:
    action, verb, values = LIMITS[name]
    result = plan_of(*many(action, 3, **values), managed=10)
    assert limit_reasons(result, only(name, Limit(count=2)), "local") == [
        f"[local] 3 of 10 users (30%) would be {verb}, over the policy.{name} limit of 2; "
        "re-run with --force to proceed"
    ]


@pytest.mark.parametrize("name", sorted(LIMITS))
def test_a_limit_allows_exactly_its_number(name: str) -> None:
    action, _, values = LIMITS[name]
    assert limit_reasons(plan_of(*many(action, 2, **values)), only(name, Limit(count=2)), "local") == []


def test_a_percentage_limit_is_named_as_a_percentage_and_the_share_rounds_down() -> None:
    result = plan_of(*many(Action.DELETE_USER, 2), managed=3)
    assert limit_reasons(result, only("max_delete", Limit(percent=25)), "cometchat") == [
        "[cometchat] 2 of 3 users (66%) would be deleted, over the policy.max_delete limit of 25%; "
        "re-run with --force to proceed"
    ]


def test_with_no_managed_users_there_is_no_share_to_give() -> None:
    result = plan_of(Change(Action.DELETE_USER, "u0"), managed=0)
    assert limit_reasons(result, Policy(), "local") == [
        "[local] 1 of 0 users would be deleted, over the policy.max_delete limit of 0; "
        "re-run with --force to proceed"
    ]


def test_a_single_change_over_a_zero_limit_is_refused() -> None:
    assert len(limit_reasons(plan_of(Change(Action.DELETE_USER, "u0")), Policy(), "local")) == 1


def test_every_exceeded_limit_is_named_in_one_refusal_in_a_fixed_order() -> None:
    changes = [
        *many(Action.UPDATE_USER, 1, **RENAME),
        *many(Action.UNBAN_USER, 1),
        *many(Action.DELETE_USER, 1),
        *many(Action.DEACTIVATE_USER, 1),
    ]
    zero = Limit(count=0)
    policy = Policy(max_deactivate=zero, max_delete=zero, max_unban=zero, max_update=zero)
    with pytest.raises(UnsafePlanError) as caught:
        check(plan_of(*changes), policy, "local", force=False)
    names = [reason.split("policy.")[1].split(" ")[0] for reason in caught.value.reasons]
    assert names == ["max_deactivate", "max_delete", "max_unban", "max_update"]
    check(plan_of(*changes), policy, "local", force=True)  # --force lifts all four


# ------------------------------------------------------------- what counts


def test_only_updates_that_lose_a_value_count_against_max_update() -> None:
    changes = [
        Change(Action.UPDATE_USER, "fills", before={"name": ""}, after={"name": "Filled"}),
        Change(Action.UPDATE_USER, "adds", before={"tags": ["a"]}, after={"tags": ["a", "b"]}),
        Change(Action.UPDATE_USER, "overwrites", before={"name": "Old"}, after={"name": "New"}),
    ]
    assert limit_reasons(plan_of(*changes), only("max_update", Limit(count=0)), "local") == [
        "[local] 1 of 10 users (10%) would be updated, over the policy.max_update limit of 0; "
        "re-run with --force to proceed"
    ]


def test_updates_of_users_the_plan_adopts_do_not_count() -> None:
    changes = [
        Change(Action.ADOPT_USER, "found"),
        Change(Action.UPDATE_USER, "found", **RENAME),
        Change(Action.UPDATE_USER, "kept", **RENAME),
    ]
    reasons = limit_reasons(plan_of(*changes), only("max_update", Limit(count=0)), "local")
    assert [reason.split(" would")[0] for reason in reasons] == ["[local] 1 of 10 users (10%)"]


def test_other_actions_count_whatever_they_hold() -> None:
    deactivation = Change(Action.DEACTIVATE_USER, "u0", before={"active": True}, after={"active": False})
    assert len(limit_reasons(plan_of(deactivation), only("max_deactivate", Limit(count=0)), "x")) == 1


@pytest.mark.parametrize(
    ("before", "after", "loses"),
    [
        (None, "x", False),
        ("", "x", False),
        ({}, {"a": 1}, False),
        ([], ["a"], False),
        ((), ("a",), False),
        (frozenset(), frozenset({"a"}), False),
        (0, 1, True),  # zero is a value, not an empty field
        (False, True, True),
        ("a", "a", False),
        ("a", "b", True),
        ("a", None, True),
        ({"a": 1, "b": 2}, {"a": 1, "b": 2, "c": 3}, False),
        ({"a": 1, "b": 2}, {"a": 1}, True),
        ({"a": 1}, {"a": 2}, True),
        ({"a": None, "b": ""}, {}, False),  # only empty values were there
        ({"a": {"x": 1}}, {"a": {"x": 1, "y": 2}}, False),
        ({"a": 1}, "a", True),
        (["x", "y"], ["y", "x", "z"], False),
        (["x", "y"], ["x"], True),
        ((1, 2), ["1", "2"], False),  # compared as text, as the platforms store them
        (frozenset({"x"}), ("x",), False),
        (["x"], "x", True),
    ],
)
def test_an_update_loses_data_only_when_a_set_value_is_overwritten_or_removed(
    before: Any, after: Any, loses: bool
) -> None:
    change = Change(Action.UPDATE_USER, "u", before={"field": before}, after={"field": after})
    assert overwrites(change) is loses


def test_an_update_loses_data_when_any_one_field_does() -> None:
    change = Change(
        Action.UPDATE_USER, "u", before={"name": "", "role": "agent"}, after={"name": "A", "role": "admin"}
    )
    assert overwrites(change) is True
    filling = Change(Action.UPDATE_USER, "u", before={"name": ""}, after={"name": "A", "role": "admin"})
    assert overwrites(filling) is False


# -------------------------------------------------------------- ownership


def test_users_of_another_owner_are_listed_with_their_owner() -> None:
    result = plan_of(conflicts={"alice": "sales", "bob": "support"})
    assert conflict_reasons(result, "local") == [
        "[local] 2 declared user(s) belong to another owner: alice (owner 'sales'), bob (owner 'support'); "
        "re-run with --allow-takeover to take them over"
    ]


def test_at_most_ten_conflicts_are_named_then_how_many_more() -> None:
    owners = {f"u{i:02}": "sales" for i in range(12)}
    (reason,) = conflict_reasons(plan_of(conflicts=owners), "local")
    assert reason.startswith("[local] 12 declared user(s) belong to another owner: u00 (owner 'sales'), ")
    assert "u09 (owner 'sales') and 2 more; re-run" in reason
    assert "u10" not in reason


def test_ten_conflicts_are_all_named() -> None:
    owners = {f"u{i:02}": "sales" for i in range(10)}
    (reason,) = conflict_reasons(plan_of(conflicts=owners), "local")
    assert reason.endswith("u09 (owner 'sales'); re-run with --allow-takeover to take them over")


def test_a_conflict_whose_owner_is_unknown_names_an_empty_owner() -> None:
    result = Plan(changes=(), owner="ops", conflicts=("alice",))
    assert "alice (owner '')" in conflict_reasons(result, "local")[0]


def test_no_conflicts_no_reasons() -> None:
    assert conflict_reasons(plan_of(), "local") == []
    check(plan_of(), Policy(), "local", force=False)


def test_force_does_not_lift_an_ownership_refusal_and_limits_are_reported_with_it() -> None:
    result = plan_of(Change(Action.DELETE_USER, "u0"), conflicts={"alice": "sales"})
    with pytest.raises(UnsafePlanError) as forced:
        check(result, Policy(), "local", force=True)
    assert [reason.split(" ")[2] for reason in forced.value.reasons] == ["declared"]
    with pytest.raises(UnsafePlanError) as unforced:
        check(result, Policy(), "local", force=False)
    assert len(unforced.value.reasons) == 2
    assert "max_delete" in unforced.value.reasons[0] and "--allow-takeover" in unforced.value.reasons[1]


def test_eleven_conflicts_name_ten_and_one_more() -> None:
    owners = {f"u{i:02}": "sales" for i in range(11)}
    (reason,) = conflict_reasons(plan_of(conflicts=owners), "local")
    assert "u09 (owner 'sales') and 1 more; re-run" in reason


def test_every_refusal_names_the_platform() -> None:
    result = plan_of(Change(Action.DELETE_USER, "u0"), conflicts={"alice": "sales"})
    with pytest.raises(UnsafePlanError) as caught:
        check(result, Policy(), "nexconn", force=False)
    assert [reason[:10] for reason in caught.value.reasons] == ["[nexconn] ", "[nexconn] "]


# ------------------------------------------------ registered users (capacity)

DEVELOPMENT = Capacity(registered=97, limit=100, environment="development")


def test_a_plan_registering_users_over_the_app_s_limit_is_refused_even_with_force() -> None:
    plan = plan_of(*many(Action.CREATE_USER, 4))
    with pytest.raises(UnsafePlanError) as refused:
        check(plan, Policy(), "prod", force=True, capacity=DEVELOPMENT)
    assert refused.value.reasons == (
        "[prod] the development app has 97 registered users and this plan registers 4 more (101), "
        "over the development environment's limit of 100 registered users; delete test users in "
        "the console, declare fewer users, or use a production app (provider.environment: production)",
    )


def test_registering_up_to_the_app_s_limit_is_allowed() -> None:
    check(plan_of(*many(Action.CREATE_USER, 3)), Policy(), "prod", force=False, capacity=DEVELOPMENT)
    assert capacity_reasons(plan_of(*many(Action.CREATE_USER, 3)), DEVELOPMENT, "prod") == []
    assert len(capacity_reasons(plan_of(*many(Action.CREATE_USER, 4)), DEVELOPMENT, "prod")) == 1


def test_a_plan_registering_no_one_is_never_over_capacity() -> None:
    full = Capacity(registered=101, limit=100, environment="development")
    assert capacity_reasons(plan_of(*many(Action.UPDATE_USER, 2, **RENAME)), full, "prod") == []
    assert capacity_reasons(plan_of(*many(Action.CREATE_USER, 200)), None, "prod") == []
