"""Printed plans: markdown parsed and checked structurally; personal data masked in
every format (text, JSON, markdown, drift) for a manifest full of it."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import yaml
from markdown_it import MarkdownIt
from test_cli import chatroster

from chatroster.changes import Action, Change
from chatroster.masking import Masker
from chatroster.plan import Plan
from chatroster.render import plan_json, plan_markdown, plan_text

EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")
MD = MarkdownIt("commonmark").enable("table")


def plan_of(changes: list[Change], **extra: object) -> Plan:
    return Plan(
        changes=tuple(changes),
        owner="ops",
        managed=10,
        created_at=datetime(2026, 11, 21, tzinfo=UTC),
        provider={"type": "local", "path": "x.db"},
        **extra,
    )  # type: ignore[arg-type]


def tokens(text: str) -> list[str]:
    return [token.type for token in MD.parse(text)]


def table_rows(text: str) -> list[list[str]]:
    rows, row, cell = [], [], False
    for token in MD.parse(text):
        if token.type == "tr_open":
            row = []
        elif token.type in ("th_open", "td_open"):
            cell = True
        elif token.type == "inline" and cell:
            row.append(token.content)
            cell = False
        elif token.type == "tr_close":
            rows.append(row)
    return rows


def test_markdown_starts_with_a_count_per_action_table() -> None:
    plan = plan_of(
        [
            Change(Action.CREATE_USER, "a", after={"name": "A"}),
            Change(Action.CREATE_USER, "b", after={"name": "B"}),
            Change(Action.DEACTIVATE_USER, "c", before={"active": True}, after={"active": False}),
        ]
    )
    text = plan_markdown(plan, Masker())
    assert table_rows(text) == [["action", "count"], ["create_user", "2"], ["deactivate_user", "1"]]
    assert tokens(text).index("table_open") < tokens(text).index("bullet_list_open")


def test_destructive_changes_stand_out_in_markdown() -> None:
    plan = plan_of(
        [
            Change(Action.DELETE_USER, "gone", before={"name": "G"}),
            Change(Action.UNBAN_USER, "m", before={"until": "forever"}),
            Change(Action.CREATE_USER, "new", after={"name": "N"}),
        ]
    )
    text = plan_markdown(plan, Masker())
    strong = [line for line in text.splitlines() if "⚠️ **" in line]
    assert len(strong) == 2 and any("delete_user gone" in s for s in strong)
    assert not any("create_user" in s for s in strong)


def test_a_user_with_many_changes_is_folded() -> None:
    changes = [
        Change(Action.ADD_BLOCK, "a", target=f"t{i}", before={"blocked": False}, after={"blocked": True})
        for i in range(8)
    ]
    text = plan_markdown(plan_of(changes), Masker())
    assert "<details><summary>**`a`**: 8 change(s)</summary>" in text
    assert "html_block" in tokens(text)


def test_long_markdown_is_capped_with_a_line_saying_what_was_left_out() -> None:
    changes = [Change(Action.CREATE_USER, f"user{i:04}", after={"name": "x" * 80}) for i in range(3000)]
    text = plan_markdown(plan_of(changes), Masker(), max_chars=20_000)
    assert len(text) <= 20_500
    match = re.search(r"_… (\d+) more user\(s\) left out", text)
    assert match is not None
    shown = len(re.findall(r"\*\*`user\d{4}`\*\*", text))
    assert shown + int(match.group(1)) == 3000


def test_targeted_plans_say_so_in_every_format() -> None:
    plan = plan_of([Change(Action.CREATE_USER, "a", after={"name": "A"})], targeting={"target": ["a*"]})
    assert "> **Targeted plan:** only uids matching `a*`" in plan_markdown(plan, Masker())
    assert "Targeted plan: only uids matching a*" in plan_text(plan, Masker(), colour=False)
    assert plan_json(plan, Masker())["targeting"] == {"target": ["a*"]}


def test_targeting_reads_as_words_however_it_is_combined() -> None:
    from chatroster.render.describe import targeting_words

    assert targeting_words({"exclude": ["bot-*", "test-*"]}) == "excluding bot-* and test-*"
    assert targeting_words({"target": ["a*", "b*", "c*"], "only": ["users", "bans"]}) == (
        "only uids matching a*, b* or c*, only users and bans"
    )


def test_a_warning_with_a_glob_is_plain_text_in_markdown() -> None:
    plan = plan_of(
        [],
        targeting={"target": ["*admin*"]},
        warnings=("--target '*admin*' matches no declared or live uid",),
    )
    rendered = MD.render(plan_markdown(plan, Masker()))
    assert "'*admin*' matches" in rendered and "<em>" not in rendered


def test_nested_changes_are_shown_key_by_key() -> None:
    change = Change(
        Action.UPDATE_USER,
        "a",
        before={"metadata": {"team": "core", "x": 1}},
        after={"metadata": {"team": "infra", "x": 1, "new": True}},
    )
    text = plan_text(plan_of([change]), Masker(), colour=False)
    assert 'metadata.team: "core" → "infra"' in text
    assert "metadata.new: (none) → true" in text
    assert "metadata.x" not in text


def test_masks_keep_a_stable_hash_so_reviewers_see_which_value_changed() -> None:
    masker = Masker()
    assert masker.value("a@b.io") == masker.value("a@b.io") != masker.value("c@b.io")
    assert masker.value("+65 5550 0101").startswith("masked:")
    assert masker.value("call me at x@y.org now") == f"call me at {masker.value('x@y.org')} now"
    assert Masker(show=True).value("a@b.io") == "a@b.io"


def test_no_email_or_phone_is_printed_in_any_format(tmp_path: Path) -> None:
    users = {
        f"u{i}": {
            "name": f"User{i} <user{i}@example.com>",
            "status_message": f"mail me: status{i}@example.org",
            "metadata": {
                "contact": f"meta{i}@example.net",
                "phone": f"+1 555 010 {i:04}",
                "deep": {"list": [f"deep{i}@example.com"]},
                "secret_note": "hidden",
            },
            "profile": {"email": f"profile{i}@example.com", "location": "SG"},
            "tags": ["staff"],
        }
        for i in range(20)
    }
    manifest = tmp_path / "people.yaml"
    manifest.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "provider": {"type": "local"},
                "policy": {"personal_metadata": ["secret_note"]},
                "users": users,
            }
        )
    )
    outputs = []
    for fmt in ("text", "json", "markdown"):
        result = chatroster("plan", str(manifest), "--format", fmt, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout + result.stderr)
        if fmt == "json":
            json.loads(result.stdout)  # the JSON format stays valid JSON when masked
    applied = chatroster("apply", str(manifest), "--yes", cwd=tmp_path)
    outputs.append(applied.stdout + applied.stderr)
    for i in range(20):  # then drift on every kind of value
        users[f"u{i}"]["metadata"]["contact"] = f"changed{i}@example.net"
    manifest.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "provider": {"type": "local"},
                "policy": {"personal_metadata": ["secret_note"]},
                "users": users,
            }
        )
    )
    for fmt in ("text", "json", "markdown"):
        drift = chatroster("drift", str(manifest), "--format", fmt, cwd=tmp_path)
        assert drift.returncode == 2
        outputs.append(drift.stdout + drift.stderr)
    for output in outputs:
        assert EMAIL.findall(output) == []
        assert "555 010" not in output and "hidden" not in output
        assert "SG" not in output  # hosted profile fields are masked whole
    shown = chatroster("plan", str(manifest), "--show-personal", cwd=tmp_path)
    assert "changed3@example.net" in shown.stdout


def test_numbers_and_booleans_are_never_masked_only_text_is() -> None:
    masker = Masker(personal_metadata=frozenset({"secret"}), key=b"app")
    profile = masker.field(
        "profile", {"email": "a@b.io", "gender": 2, "level": 3.5, "location": "SG", "ext": {"ext_vip": True}}
    )
    assert profile["gender"] == 2 and profile["level"] == 3.5
    assert profile["ext"]["ext_vip"] is True
    assert profile["email"].startswith("masked:") and profile["location"].startswith("masked:")
    metadata = masker.field("metadata", {"secret": {"pin": 1234, "note": "x"}, "n": 5551234567})
    assert metadata["secret"]["pin"] == 1234 and metadata["n"] == 5551234567
    assert metadata["secret"]["note"].startswith("masked:")


def test_a_plan_shows_numeric_profile_fields_for_review(tmp_path: Path) -> None:
    manifest = tmp_path / "levels.yaml"
    manifest.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "provider": {"type": "local"},
                "policy": {"personal_metadata": ["tier"]},
                "users": {
                    "alice": {
                        "name": "Alice",
                        "metadata": {"tier": 7, "region": "apac"},
                        "profile": {"email": "alice@example.com", "gender": 2, "level": 41, "location": "SG"},
                    }
                },
            }
        )
    )
    for fmt in ("text", "markdown", "json"):
        result = chatroster("plan", str(manifest), "--format", fmt, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert "alice@example.com" not in result.stdout and "SG" not in result.stdout
        if fmt == "json":
            after = json.loads(result.stdout)["changes"][0]["after"]
            assert after["profile"]["level"] == 41 and after["profile"]["gender"] == 2
            assert after["metadata"]["tier"] == 7
        else:
            assert '"level": 41' in result.stdout and '"gender": 2' in result.stdout
            assert '"tier": 7' in result.stdout


def test_refused_takeovers_are_shown_not_reported_as_no_changes() -> None:
    plan = plan_of([], conflicts=("o2",), conflict_owners={"o2": "other"})
    for text in (plan_text(plan, Masker(), colour=False), plan_markdown(plan, Masker())):
        assert "No changes. Live state matches" not in text
        assert "o2 belongs to owner 'other'" in text and "--allow-takeover" in text


def test_phone_numbers_inside_text_and_listed_keys_at_any_depth_are_masked() -> None:
    masker = Masker(personal_metadata=frozenset({"secret"}), key=b"app")
    text = masker.value("call +1 415 555 0100 before 2026-11-01 10:00 (ticket 12345)")
    assert "415" not in text and "2026-11-01 10:00" in text and "12345" in text
    nested = masker.field("metadata", {"team": {"secret": "deep", "name": "core"}})
    assert nested["team"]["name"] == "core" and nested["team"]["secret"].startswith("masked:")


def test_masks_are_keyed_so_a_known_value_cannot_be_looked_up() -> None:
    import hashlib

    unkeyed = "masked:" + hashlib.sha256(repr("SG").encode()).hexdigest()[:8]
    one, other = Masker(key=b"app one"), Masker(key=b"app two")
    assert one.field("profile", {"location": "SG"})["location"] != unkeyed
    assert one.value("a@b.io") != other.value("a@b.io")
    assert one.value("a@b.io") == Masker(key=b"app one").value("a@b.io")


def test_a_value_with_backticks_cannot_break_out_of_its_code_span() -> None:
    hostile = "x` | **bold** <img src=x onerror=alert(1)> ``"
    change = Change(Action.UPDATE_USER, "a", before={"name": "A"}, after={"name": hostile})
    text = plan_markdown(plan_of([change]), Masker())
    rendered = MD.render(text)
    assert "<img" not in rendered and "<strong>bold</strong>" not in rendered
    assert "&lt;img src=x onerror=alert(1)&gt;" in rendered
