"""The applier's order and dispatch cover every action, on purpose."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from chatroster.apply import DISPATCH, apply
from chatroster.changes import ORDER, Action, Change, ordered
from chatroster.errors import ApplyError, AuthError, ProviderError
from chatroster.model import State
from chatroster.providers.base import Provider, Scope


def test_every_action_has_exactly_one_place_in_the_apply_order() -> None:
    assert sorted(ORDER) == sorted(Action) and len(ORDER) == len(set(ORDER))


def test_every_action_is_dispatched_to_the_provider_method_named_for_it() -> None:
    assert set(DISPATCH) == set(Action)


def test_users_exist_before_relations_name_them_and_are_deactivated_last() -> None:
    rank = {action: i for i, action in enumerate(ORDER)}
    for relation in (Action.ADD_BLOCK, Action.ADD_WHITELIST, Action.BAN_USER):
        assert rank[Action.CREATE_USER] < rank[relation] < rank[Action.DEACTIVATE_USER]
    assert rank[Action.REMOVE_BLOCK] < rank[Action.ADD_BLOCK]
    assert rank[Action.REMOVE_WHITELIST] < rank[Action.ADD_WHITELIST]
    assert rank[Action.DEACTIVATE_USER] < rank[Action.DELETE_USER]
    shuffled = [
        Change(Action.DELETE_USER, "a"),
        Change(Action.ADD_BLOCK, "a", target="b"),
        Change(Action.CREATE_USER, "a"),
    ]
    assert [c.action for c in ordered(shuffled)] == [Action.CREATE_USER, Action.ADD_BLOCK, Action.DELETE_USER]


class Recording(Provider):
    """A provider that records each call and fails the way it is told (a fake for the
    provider only: the applier under test is real)."""

    type = "recording"
    batch_size = 2

    def __init__(self, error: ProviderError | None = None) -> None:
        self.calls: list[tuple[str, list[str]]] = []
        self.error = error

    def identity(self) -> dict[str, str]:
        return {"type": self.type}

    def read(self, scope: Scope) -> State:
        return State(users={})

    def _record(self, name: str, batch: Sequence[Change]) -> None:
        self.calls.append((name, [c.uid for c in batch]))
        if self.error is not None:
            raise self.error

    def create_users(self, changes: Sequence[Change]) -> None:
        self._record("create_users", changes)

    def add_blocks(self, changes: Sequence[Change]) -> None:
        self._record("add_blocks", changes)


CHANGES = ordered(
    [Change(Action.CREATE_USER, u) for u in "abc"] + [Change(Action.ADD_BLOCK, "a", target="b")]
)


def test_changes_reach_the_provider_method_of_their_action_in_batches() -> None:
    provider = Recording()
    result = apply(CHANGES, provider)
    assert result.done == 4
    assert provider.calls == [("create_users", ["a", "b"]), ("create_users", ["c"]), ("add_blocks", ["a"])]


def test_rejected_credentials_stop_the_run_even_with_continue_on_error() -> None:
    provider = Recording(AuthError("credentials rejected: check NEXCONN_APP_SECRET"))
    with pytest.raises(AuthError):
        apply(CHANGES, provider, continue_on_error=True)
    assert len(provider.calls) == 1  # not once per batch: every call would fail alike


def test_other_provider_errors_fail_their_batch_and_continue_on_error_goes_on() -> None:
    provider = Recording(ProviderError("HTTP 500"))
    with pytest.raises(ApplyError) as caught:
        apply(CHANGES, provider, continue_on_error=True)
    assert len(provider.calls) == 3 and len(caught.value.failures) == 4
