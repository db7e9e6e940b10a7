"""`apply --plan`'s checks, driven in-process on a real SQLite file, so that mutation
testing (docs/mutation.md) sees them: the CLI tests of saved plans run chatroster as a
subprocess, which imports the unmutated package.

Each test follows a user's steps with the library calls the CLI makes: load the
manifest, open the local platform, make a plan, save it (`plan_document`), read it back
(`load_plan`) and check it against a fresh plan (`recheck`). Times come from
``Options.now``, never from the wall clock.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from local_app import store

from chatroster.apply import apply as apply_changes
from chatroster.errors import PlanFileError
from chatroster.manifest import load
from chatroster.model import Manifest
from chatroster.plan import Plan
from chatroster.providers import Provider, open_provider
from chatroster.runner import Options, make_plan
from chatroster.saved import MAX_PLAN_BYTES, check_origin, load_plan, plan_document, recheck

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
OWNER = "ops"

Document = dict[str, Any]
Edit = Callable[[Document], None]


def write(path: Path, document: Document) -> None:
    path.write_text(yaml.safe_dump(document, sort_keys=False))


def edit(path: Path, change: Edit) -> None:
    document = yaml.safe_load(path.read_text())
    change(document)
    write(path, document)


def manifest(path: Path) -> Manifest:
    return load([str(path)])


@contextmanager
def platform(path: Path, *, writable: bool = False) -> Iterator[Provider]:
    with open_provider(manifest(path).provider, writable=writable) as provider:
        yield provider


def apply_now(path: Path) -> None:
    with platform(path, writable=True) as provider:
        apply_changes(make_plan(manifest(path), provider, Options(now=lambda: NOW)).changes, provider)


def save(path: Path, *, now: datetime = NOW, allow_takeover: bool = False) -> Path:
    """`chatroster plan --out plan.json`, made at ``now``."""
    out = path.parent / "plan.json"
    with platform(path) as provider:
        made = make_plan(manifest(path), provider, Options(allow_takeover=allow_takeover, now=lambda: now))
    out.write_text(json.dumps(plan_document(made, out), indent=2))
    return out


def document(plan: Path) -> Document:
    data: Document = json.loads(plan.read_text())
    return data


def rewrite_plan(plan: Path, change: Edit) -> None:
    data = document(plan)
    change(data)
    plan.write_text(json.dumps(data, indent=2))


def recheck_saved(
    path: Path,
    plan: Path,
    *,
    now: datetime = NOW,
    max_age: timedelta | None = None,
    allow_takeover: bool = False,
) -> Plan:
    """`chatroster apply --plan plan.json users.yaml`, up to what it would apply."""
    saved = load_plan(plan)
    with platform(path) as provider:
        options = Options(allow_takeover=allow_takeover, now=lambda: now)
        return recheck(saved, manifest(path), provider, options, max_age=max_age)


def refusal(path: Path, plan: Path, **extra: Any) -> str:
    with pytest.raises(PlanFileError) as caught:
        recheck_saved(path, plan, **extra)
    return str(caught.value)


def keys(plan: Plan) -> list[str]:
    return [change.key for change in plan.changes]


@pytest.fixture
def app(tmp_path: Path) -> Path:
    """alice (blocking bob), bob and carol (banned for good), owned by ``ops``, applied."""
    path = tmp_path / "users.yaml"
    write(
        path,
        {
            "version": 1,
            "provider": {"type": "local", "path": "app.db"},
            "owner": OWNER,
            "policy": {
                "prune": "delete",
                "max_deactivate": "100%",
                "max_delete": "100%",
                "max_unban": "100%",
            },
            "users": {
                "alice": {"name": "Alice", "blocklist": ["bob"]},
                "bob": {"name": "Bob"},
                "carol": {"name": "Carol"},
            },
            "bans": {"carol": {"until": "forever"}},
        },
    )
    apply_now(path)
    return path


def rename_bob(document: Document) -> None:
    document["users"]["bob"]["name"] = "Robert"


# ------------------------------------------------------------------ the file


def test_a_saved_plan_keeps_its_manifest_and_store_relative_to_itself(app: Path) -> None:
    edit(app, rename_bob)
    data = document(save(app))
    assert data["manifest_files"] == ["users.yaml"]
    assert data["provider"] == {"type": "local", "path": "app.db"}
    assert data["fingerprints"].keys() == {"update_user:bob"}
    assert data["summary"] == {"update_user": 1}


def test_a_saved_plan_with_no_changes_still_holds_its_fingerprints(app: Path) -> None:
    data = document(save(app))
    assert data["changes"] == []
    assert data["fingerprints"] == {}


def test_a_saved_plan_read_back_names_its_files_absolutely(app: Path) -> None:
    edit(app, rename_bob)
    saved = load_plan(save(app))
    assert saved.manifest_files == (str(app.resolve()),)
    assert dict(saved.provider) == {"type": "local", "path": str((app.parent / "app.db").resolve())}
    assert keys(saved) == ["update_user:bob"]
    assert saved.created_at == NOW


def test_a_saved_plan_still_applies_after_the_checkout_moves(app: Path, tmp_path: Path) -> None:
    edit(app, rename_bob)
    plan = save(app)
    moved = tmp_path / "moved"
    moved.mkdir()
    for name in ("users.yaml", "app.db", plan.name):
        os.rename(app.parent / name, moved / name)
    saved = load_plan(moved / "plan.json")
    assert saved.manifest_files == (str((moved / "users.yaml").resolve()),)
    assert keys(recheck_saved(moved / "users.yaml", moved / "plan.json")) == ["update_user:bob"]


def test_a_missing_plan_file_says_how_to_make_one(tmp_path: Path) -> None:
    missing = tmp_path / "nothing.json"
    with pytest.raises(PlanFileError) as caught:
        load_plan(missing)
    assert (
        str(caught.value) == f"{missing}: no such plan file; make one with `chatroster plan --out {missing}`"
    )


def test_a_directory_is_not_a_plan_file(tmp_path: Path) -> None:
    with pytest.raises(PlanFileError, match=r"^.*: not a regular file; make one with `chatroster plan --out"):
        load_plan(tmp_path)


def test_a_file_larger_than_any_saved_plan_is_refused_without_reading_it(tmp_path: Path) -> None:
    huge = tmp_path / "huge.json"
    with huge.open("wb") as sparse:  # a sparse file: its size costs no disk
        sparse.truncate(MAX_PLAN_BYTES + 1)
    with pytest.raises(PlanFileError) as caught:
        load_plan(huge)
    assert str(caught.value) == f"{huge}: too large to be a saved plan; make the plan again"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b'{"changes": [\n  1,,\n]}', "invalid JSON at line 2, column 5: Expecting value"),
        (b'{"changes": "\xff"}', "not UTF-8 text"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ],
    ids=["broken-json", "not-utf8", "too-deep"],
)
def test_an_unreadable_plan_file_says_why(tmp_path: Path, content: bytes, reason: str) -> None:
    plan = tmp_path / "plan.json"
    plan.write_bytes(content)
    with pytest.raises(PlanFileError) as caught:
        load_plan(plan)
    assert str(caught.value) == (
        f"{plan}: not a readable plan file ({reason}); make the plan again with `chatroster plan --out`"
    )


@pytest.mark.parametrize("content", ["[]", '{"format_version": 1}', '"changes"'])
def test_json_that_is_no_plan_is_refused(tmp_path: Path, content: str) -> None:
    plan = tmp_path / "plan.json"
    plan.write_text(content)
    with pytest.raises(PlanFileError) as caught:
        load_plan(plan)
    assert str(caught.value) == f"{plan}: not a chatroster plan; make one with `chatroster plan --out {plan}`"


def test_printed_json_is_not_taken_for_a_saved_plan(app: Path) -> None:
    edit(app, rename_bob)
    plan = save(app)
    rewrite_plan(plan, lambda d: d.pop("fingerprints"))
    with pytest.raises(PlanFileError) as caught:
        load_plan(plan)
    assert "not a saved plan: this is printed output (`--format json`" in str(caught.value)
    assert str(caught.value).endswith(f"save a plan to apply with `chatroster plan --out {plan}`")


def test_a_plan_of_another_format_version_without_fingerprints_is_refused_by_its_version(app: Path) -> None:
    plan = save(app)
    rewrite_plan(plan, lambda d: (d.pop("fingerprints"), d.update(format_version=2)))
    with pytest.raises(PlanFileError) as caught:
        load_plan(plan)
    assert "printed output" not in str(caught.value)


def test_schema_problems_are_listed_with_where_they_are(app: Path) -> None:
    edit(app, rename_bob)
    plan = save(app)

    def damage(data: Document) -> None:
        data["changes"][0]["uid"] = None
        data["owner"] = 7

    rewrite_plan(plan, damage)
    with pytest.raises(PlanFileError) as caught:
        load_plan(plan)
    lines = str(caught.value).splitlines()
    assert lines[0] == f"{plan}: not a valid saved plan:"
    assert lines[1].startswith("  changes[0].uid: None is not of type")
    assert lines[2].startswith("  owner: 7 is not of type")
    assert (
        lines[-1] == "Make the plan again with `chatroster plan --out`; a saved plan is not edited by hand."
    )


def test_a_problem_with_the_whole_file_is_named_so(app: Path) -> None:
    plan = save(app)
    rewrite_plan(plan, lambda d: d.pop("owner"))
    with pytest.raises(PlanFileError) as caught:
        load_plan(plan)
    assert "\n  (the whole file): 'owner' is a required property\n" in str(caught.value)


def test_only_the_first_twenty_schema_problems_are_listed(app: Path) -> None:
    edit(app, lambda d: d["users"].update({f"x{i:02}": {"name": f"X {i}"} for i in range(25)}))
    plan = save(app)
    rewrite_plan(plan, lambda d: [change.update(uid=None) for change in d["changes"]])
    with pytest.raises(PlanFileError) as caught:
        load_plan(plan)
    listed = [line for line in str(caught.value).splitlines() if line.startswith("  ")]
    assert len(listed) == 20
    assert listed[0].startswith("  changes[0].uid: ")


def test_an_edited_summary_is_refused(app: Path) -> None:
    edit(app, rename_bob)
    plan = save(app)
    rewrite_plan(plan, lambda d: d["summary"].update(update_user=2))
    with pytest.raises(PlanFileError) as caught:
        load_plan(plan)
    assert str(caught.value) == (
        f"{plan}: the summary does not match the changes listed; the file was edited or damaged; "
        "make the plan again"
    )


def test_a_change_listed_twice_is_refused_naming_it(app: Path) -> None:
    edit(app, rename_bob)
    plan = save(app)

    def twice(data: Document) -> None:
        data["changes"].append(data["changes"][0])
        data["summary"]["update_user"] = 2

    rewrite_plan(plan, twice)
    with pytest.raises(PlanFileError) as caught:
        load_plan(plan)
    assert str(caught.value) == (
        f"{plan}: changes listed twice (update_user:bob); the file was edited or damaged; make the plan again"
    )


# ---------------------------------------------------------------- the origin


def origin_problem(app: Path, plan: Plan, *, now: datetime = NOW, max_age: timedelta | None = None) -> str:
    with platform(app) as provider, pytest.raises(PlanFileError) as caught:
        check_origin(plan, manifest(app), provider.identity(), now, max_age)
    return str(caught.value)


def test_a_plan_for_another_platform_is_refused_naming_both(app: Path) -> None:
    saved = load_plan(save(app))
    other = saved.evolve(provider={"type": "local", "path": "/elsewhere/app.db"})
    here = str((app.parent / "app.db").resolve())
    assert origin_problem(app, other) == (
        "the plan was made for {'type': 'local', 'path': '/elsewhere/app.db'}, but the manifest points at "
        f"{{'type': 'local', 'path': '{here}'}}; make the plan again for this platform"
    )


def test_a_plan_for_another_owner_is_refused(app: Path) -> None:
    saved = load_plan(save(app))
    assert origin_problem(app, saved.evolve(owner="sales")) == (
        "the plan was made for owner 'sales', the manifest says 'ops'; make the plan again"
    )


def test_a_plan_from_another_manifest_is_refused(app: Path) -> None:
    plan = save(app)
    edit(app, rename_bob)
    assert refusal(app, plan) == (
        "the manifest changed since the plan was made; make the plan again from this manifest and review it"
    )


def test_a_plan_without_a_creation_time_is_refused(app: Path) -> None:
    saved = load_plan(save(app))
    assert origin_problem(app, saved.evolve(created_at=None)) == (
        "the plan has no valid creation time; make the plan again"
    )


def test_a_plan_made_up_to_five_minutes_ahead_of_this_clock_is_accepted(app: Path) -> None:
    plan = save(app, now=NOW + timedelta(minutes=5))
    assert recheck_saved(app, plan, now=NOW).created_at == NOW + timedelta(minutes=5)


def test_a_plan_dated_further_in_the_future_is_refused(app: Path) -> None:
    plan = save(app, now=NOW + timedelta(minutes=5, seconds=1))
    assert refusal(app, plan, now=NOW) == "the plan has no valid creation time; make the plan again"


def test_a_plan_exactly_max_age_old_still_applies(app: Path) -> None:
    plan = save(app, now=NOW - timedelta(hours=2))
    assert recheck_saved(app, plan, now=NOW, max_age=timedelta(hours=2)).empty


def test_a_plan_older_than_max_age_is_refused_saying_when_it_was_made(app: Path) -> None:
    plan = save(app, now=NOW - timedelta(hours=2, seconds=1))
    assert refusal(app, plan, now=NOW, max_age=timedelta(hours=2)) == (
        "the plan was made at 2026-11-01 09:59:59 UTC, longer ago than --max-age; make the plan again"
    )


def test_without_max_age_an_old_plan_still_applies(app: Path) -> None:
    plan = save(app, now=NOW - timedelta(days=30))
    assert recheck_saved(app, plan, now=NOW).empty


# -------------------------------------------------------------- the changes


def test_a_fresh_plan_is_applied_as_saved_with_the_live_counts(app: Path) -> None:
    edit(app, rename_bob)
    edit(app, lambda d: d["users"].update(dave={"name": "Dave"}))
    plan = save(app, now=NOW - timedelta(minutes=1))
    result = recheck_saved(app, plan)
    assert keys(result) == ["create_user:dave", "update_user:bob"]
    assert result.managed == 3  # alice, bob and carol are on the platform
    assert result.created_at == NOW - timedelta(minutes=1)


def test_the_targeting_of_the_saved_plan_is_kept(app: Path) -> None:
    edit(app, rename_bob)
    out = app.parent / "plan.json"
    with platform(app) as provider:
        options = Options(now=lambda: NOW)
        made = make_plan(manifest(app), provider, options)
    made = made.evolve(targeting={"target": ["bob"]})
    out.write_text(json.dumps(plan_document(made, out)))
    assert dict(recheck_saved(app, out).targeting) == {"target": ["bob"]}


def test_a_change_whose_object_changed_since_is_stale(app: Path) -> None:
    edit(app, rename_bob)
    plan = save(app)
    with store(app) as db:
        db.update_user("bob", {"name": "Bobby"})
    assert refusal(app, plan) == (
        "1 change(s) of the saved plan cannot be applied:\n"
        "  update_user:bob: the object changed since the plan was made\n"
        "Nothing was applied; make the plan again and review it."
    )


def test_a_change_already_made_is_skipped(app: Path) -> None:
    edit(app, rename_bob)
    plan = save(app)
    with store(app) as db:
        db.update_user("bob", {"name": "Robert"})
    assert recheck_saved(app, plan).empty


def test_a_half_applied_plan_keeps_only_what_is_left(app: Path) -> None:
    edit(app, rename_bob)
    edit(app, lambda d: d["users"]["alice"].update(blocklist=["carol"]))
    plan = save(app)
    assert keys(load_plan(plan)) == ["update_user:bob", "remove_block:alice:bob", "add_block:alice:carol"]
    with store(app) as db:
        db.remove_relations("blocks", [("alice", "bob")])
    assert keys(recheck_saved(app, plan)) == ["update_user:bob", "add_block:alice:carol"]


def test_a_change_without_a_fingerprint_is_refused(app: Path) -> None:
    edit(app, rename_bob)
    plan = save(app)
    rewrite_plan(plan, lambda d: d["fingerprints"].clear())
    assert refusal(app, plan).splitlines()[1] == (
        "  update_user:bob: the plan has no fingerprint for this change (was the file edited?)"
    )


@pytest.mark.parametrize("side", ["before", "after"])
def test_an_edited_value_is_refused_naming_the_side_and_field(app: Path, side: str) -> None:
    edit(app, rename_bob)
    plan = save(app)
    rewrite_plan(plan, lambda d: d["changes"][0][side].update(name="Mallory"))
    assert refusal(app, plan).splitlines()[1] == (
        f"  update_user:bob: {side}.name in the plan is not what the manifest and the live state give "
        "(was the file edited?)"
    )


def test_an_added_change_with_a_made_up_fingerprint_is_refused_as_stale(app: Path) -> None:
    plan = save(app)

    def add_delete(data: Document) -> None:
        data["changes"].append({"action": "delete_user", "uid": "bob", "before": {}, "after": {}})
        data["summary"] = {"delete_user": 1}
        data["fingerprints"]["delete_user:bob"] = "0" * 16

    rewrite_plan(plan, add_delete)
    assert refusal(app, plan).splitlines()[1] == (
        "  delete_user:bob: the object changed since the plan was made"
    )


def test_an_added_change_with_its_real_fingerprint_is_refused_as_not_asked_for(app: Path) -> None:
    edit(app, rename_bob)
    real = document(save(app))["fingerprints"]["update_user:bob"]
    edit(app, lambda d: d["users"]["bob"].update(name="Bob"))
    plan = save(app)

    def add_update(data: Document) -> None:
        data["changes"].append(
            {"action": "update_user", "uid": "bob", "before": {"name": "Bob"}, "after": {"name": "Robert"}}
        )
        data["summary"] = {"update_user": 1}
        data["fingerprints"]["update_user:bob"] = real

    rewrite_plan(plan, add_update)
    assert (
        refusal(app, plan).splitlines()[1] == "  update_user:bob: the manifest does not ask for this change"
    )


def test_a_takeover_in_a_saved_plan_needs_allow_takeover_at_apply(app: Path) -> None:
    edit(app, lambda d: d["users"].update(erin={"name": "Erin"}))
    with store(app) as db:
        db.insert_users(manifest(app).desired.users["erin"] for _ in (1,))
        db.update_user("erin", {"owner": "sales"})
    plan = save(app, allow_takeover=True)
    assert keys(load_plan(plan)) == ["adopt_user:erin"]
    assert refusal(app, plan).splitlines()[1] == (
        "  adopt_user:erin: the user belongs to owner 'sales'; re-run with --allow-takeover to take it over"
    )
    assert keys(recheck_saved(app, plan, allow_takeover=True)) == ["adopt_user:erin"]


def test_at_most_fifty_problems_are_listed_then_how_many_more(app: Path) -> None:
    edit(app, lambda d: d["users"].update({f"x{i:02}": {"name": f"X {i}"} for i in range(51)}))
    plan = save(app)
    rewrite_plan(plan, lambda d: d["fingerprints"].clear())
    lines = refusal(app, plan).splitlines()
    assert lines[0] == "51 change(s) of the saved plan cannot be applied:"
    assert len([line for line in lines if line.startswith("  create_user:x")]) == 50
    assert lines[51] == "  ... and 1 more"


def test_exactly_fifty_problems_are_all_listed(app: Path) -> None:
    edit(app, lambda d: d["users"].update({f"x{i:02}": {"name": f"X {i}"} for i in range(50)}))
    plan = save(app)
    rewrite_plan(plan, lambda d: d["fingerprints"].clear())
    lines = refusal(app, plan).splitlines()
    assert len(lines) == 52
    assert "more" not in lines[-2]


def test_a_user_the_plan_names_is_read_even_when_the_manifest_no_longer_reads_it(app: Path) -> None:
    """A saved change for a user the manifest would not read now: absent from the read,
    the user would look deleted and the change would be skipped as done."""
    edit(app, lambda d: d["users"].update(dave={"name": "Dave"}, erin={"name": "Erin"}))
    apply_now(app)
    edit(app, lambda d: d["users"].pop("dave"))
    plan = save(app)  # deletes dave: pruned
    assert keys(load_plan(plan)) == ["delete_user:dave"]
    edit(app, lambda d: (d["policy"].update(prune="none"), d.pop("bans")))
    # the manifest changed: make the plan's digest match it again, as an edited plan would
    digest = manifest(app).digest
    rewrite_plan(plan, lambda d: d.update(manifest_digest=digest))
    assert (
        refusal(app, plan).splitlines()[1] == "  delete_user:dave: the manifest does not ask for this change"
    )


def test_changes_left_out_of_a_saved_plan_stay_out(app: Path) -> None:
    edit(app, rename_bob)
    edit(app, lambda d: d["users"].update(dave={"name": "Dave"}))
    plan = save(app)

    def leave_out_dave(data: Document) -> None:
        data["changes"] = [c for c in data["changes"] if c["uid"] != "dave"]
        data["summary"] = {"update_user": 1}

    rewrite_plan(plan, leave_out_dave)
    assert keys(recheck_saved(app, plan)) == ["update_user:bob"]


def test_only_the_changes_listed_twice_are_named_at_most_five(app: Path) -> None:
    edit(app, lambda d: d["users"].update({f"x{i}": {"name": f"X {i}"} for i in range(7)}))
    plan = save(app)

    def twice(data: Document) -> None:
        data["changes"] += [c for c in data["changes"] if c["uid"] != "x6"]
        data["summary"] = {"create_user": 13}

    rewrite_plan(plan, twice)
    with pytest.raises(PlanFileError) as caught:
        load_plan(plan)
    named = ", ".join(f"create_user:x{i}" for i in range(5))
    assert f"changes listed twice ({named}); the file" in str(caught.value)


def test_a_long_schema_message_is_cut_at_two_hundred_characters(app: Path) -> None:
    plan = save(app)
    rewrite_plan(plan, lambda d: d.update(managed="x" * 300))
    with pytest.raises(PlanFileError) as caught:
        load_plan(plan)
    message = f"{'x' * 300!r} is not of type 'integer'"
    assert f"\n  managed: {message[:200]}\n" in str(caught.value)


def test_removing_a_value_from_a_saved_change_is_refused(app: Path) -> None:
    edit(app, rename_bob)
    plan = save(app)
    rewrite_plan(plan, lambda d: d["changes"][0]["before"].clear())
    assert refusal(app, plan).splitlines()[1] == (
        "  update_user:bob: before.name in the plan is not what the manifest and the live state give "
        "(was the file edited?)"
    )


def test_an_adoption_edited_to_write_nothing_is_not_applied(app: Path) -> None:
    """With its ``after`` emptied, the change asks for nothing, which the live state
    already is: it is skipped as done rather than applied as edited."""
    edit(app, lambda d: d["users"].update(erin={"name": "Erin"}))
    with store(app) as db:
        db.insert_users([manifest(app).desired.users["erin"]])
    plan = save(app)
    assert keys(load_plan(plan)) == ["adopt_user:erin"]
    rewrite_plan(plan, lambda d: d["changes"][0]["after"].clear())
    assert recheck_saved(app, plan).empty


def ban_plan(app: Path, until: str) -> Path:
    """A saved plan banning bob until 2026-12-31, its end then edited to ``until``."""
    edit(app, lambda d: d["bans"].update(bob={"until": "2026-12-31T00:00:00Z"}))
    plan = save(app)
    assert keys(load_plan(plan)) == ["ban_user:bob"]
    rewrite_plan(plan, lambda d: d["changes"][0]["after"].update(until=until))
    return plan


@pytest.mark.parametrize("until", ["2026-12-31T00:02:00+00:00", "2026-12-30T00:00:00+00:00"])
def test_a_ban_ending_no_later_than_the_fresh_plans_end_allows_is_accepted(app: Path, until: str) -> None:
    plan = ban_plan(app, until)
    (change,) = recheck_saved(app, plan).changes
    assert change.after["until"] == until


@pytest.mark.parametrize("until", ["2026-12-31T00:02:01+00:00", "forever", "not a time"])
def test_a_ban_ending_later_than_the_fresh_plans_end_is_refused(app: Path, until: str) -> None:
    plan = ban_plan(app, until)
    assert "ban_user:bob: after.until in the plan is not what" in refusal(app, plan)


def test_the_ban_tolerance_is_for_the_end_of_a_ban_only(app: Path) -> None:
    edit(app, lambda d: d["bans"].clear())
    plan = save(app)
    assert keys(load_plan(plan)) == ["unban_user:carol"]
    rewrite_plan(plan, lambda d: d["changes"][0]["before"].update(until="2026-01-01T00:00:00+00:00"))
    assert "unban_user:carol: before.until in the plan is not what" in refusal(app, plan)


def test_a_dated_unbans_before_is_checked_to_the_second(app: Path) -> None:
    # The two-minute tolerance is for the end of a new ban (capped at now + the maximum
    # when the fresh plan is made); what an unban ends was read, and must match exactly.
    edit(app, lambda d: d["bans"].update(carol={"until": "2026-12-31T00:00:00Z"}))
    apply_now(app)
    edit(app, lambda d: d["bans"].clear())
    plan = save(app)
    assert keys(load_plan(plan)) == ["unban_user:carol"]
    rewrite_plan(plan, lambda d: d["changes"][0]["before"].update(until="2026-12-30T23:59:00+00:00"))
    assert "unban_user:carol: before.until in the plan is not what" in refusal(app, plan)


def test_changes_listed_once_are_not_named_among_those_listed_twice(app: Path) -> None:
    edit(app, lambda d: d["users"].update({f"x{i}": {"name": f"X {i}"} for i in range(7)}))
    plan = save(app)

    def twice(data: Document) -> None:  # x5 and x6 twice; x0 to x4, sorting first, once
        data["changes"] += [c for c in data["changes"] if c["uid"] in ("x5", "x6")]
        data["summary"] = {"create_user": 9}

    rewrite_plan(plan, twice)
    with pytest.raises(PlanFileError) as caught:
        load_plan(plan)
    assert "changes listed twice (create_user:x5, create_user:x6); the file" in str(caught.value)
