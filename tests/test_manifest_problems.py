"""Bad manifests: every problem is reported at once, at its file, line and column."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from chatroster.errors import ManifestError, Problem
from chatroster.manifest import load

FIXTURES = Path(__file__).parent / "fixtures" / "manifests"
NOW = datetime(2026, 6, 1, tzinfo=UTC)


def problems(*names: str | Path, env: dict[str, str] | None = None) -> list[Problem]:
    paths = [name if isinstance(name, Path) else FIXTURES / name for name in names]
    with pytest.raises(ManifestError) as caught:
        load(paths, env={} if env is None else env, now=NOW)
    return list(caught.value.problems)


def located(problem: Problem) -> tuple[str, int, int, str]:
    return (Path(problem.file).name, problem.line, problem.column, problem.message)


def test_a_duplicate_key_is_reported_at_the_second_naming_the_first_line() -> None:
    [problem] = problems("duplicate_key.yaml")
    assert located(problem) == (
        "duplicate_key.yaml",
        6,
        5,
        "duplicate key 'name' (first given on line 4)",
    )
    assert problem.path == "users.alice.name"


def test_aliases_and_anchors_are_refused_without_expanding_them() -> None:
    found = problems("alias.yaml")
    assert [located(p) for p in found] == [
        ("alias.yaml", 3, 10, "anchors (&person) are not allowed"),
        ("alias.yaml", 5, 8, "aliases (*person) are not allowed"),
    ]


def test_an_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    # Expanded, a9 would hold ten billion items.
    lines = ["version: 1", "users:", "  alice:", "    name: A", "    metadata:"]
    lines += ["      a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"      a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 10)]
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("\n".join(lines) + "\n")
    found = problems(bomb)
    assert all("are not allowed" in p.message for p in found)
    assert any("aliases (*a8)" in p.message for p in found)


def test_custom_and_python_tags_are_refused_but_str_is_allowed() -> None:
    found = problems("custom_tag.yaml")
    assert [located(p) for p in found] == [
        ("custom_tag.yaml", 4, 11, "the tag !!python/object/apply:os.system is not allowed"),
        ("custom_tag.yaml", 6, 11, "the tag !secret is not allowed"),
    ]
    assert found[0].hint.startswith("remove the tag")


def test_a_file_over_64_mib_is_refused_before_parsing(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_text("version: 1\n" + "# padding\n" * (6800 * 1024))
    [problem] = problems(big)
    assert located(problem) == ("big.yaml", 1, 1, "the file is larger than 64 MiB")
    assert "several files" in problem.hint


def test_a_yaml_syntax_error_is_located() -> None:
    [problem] = problems("syntax_error.yaml")
    assert located(problem) == (
        "syntax_error.yaml",
        5,
        4,
        "YAML syntax error: did not find expected key (while parsing a block mapping)",
    )


def test_a_tab_in_the_indentation_gets_a_hint(tmp_path: Path) -> None:
    tabbed = tmp_path / "tabs.yaml"
    tabbed.write_text("version: 1\nusers:\n\talice: {name: Alice}\n")
    [problem] = problems(tabbed)
    assert (problem.line, problem.column) == (3, 1)
    assert problem.hint == "indent with spaces: YAML does not allow tabs"


def test_invalid_utf8_is_located_at_the_bad_byte(tmp_path: Path) -> None:
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes("version: 1\nusers:\n  jose: {name: Jos\xe9}\n".encode("latin-1"))
    [problem] = problems(latin1)
    assert located(problem) == ("latin1.yaml", 3, 19, "the file is not valid UTF-8 (byte 0xe9)")


def test_a_control_character_is_located(tmp_path: Path) -> None:
    bell = tmp_path / "bell.yaml"
    bell.write_text("version: 1\nusers:\n  é: {name: \x07}\n")
    [problem] = problems(bell)
    assert located(problem) == (
        "bell.yaml",
        3,
        13,
        "YAML error: control characters are not allowed (U+0007)",
    )


def test_a_second_document_in_a_file_is_refused() -> None:
    [problem] = problems("multiple_documents.yaml")
    assert located(problem) == (
        "multiple_documents.yaml",
        4,
        1,
        "a second YAML document ('---') in the same file",
    )


def test_a_file_that_is_not_a_mapping_is_refused() -> None:
    [problem] = problems("not_a_mapping.yaml")
    assert located(problem) == (
        "not_a_mapping.yaml",
        1,
        1,
        "a manifest file must be a mapping (version, provider, users, ...)",
    )


def test_a_missing_file_is_a_problem_not_a_traceback(tmp_path: Path) -> None:
    [problem] = problems(tmp_path / "nope.yaml")
    assert located(problem) == ("nope.yaml", 1, 1, "no such file or directory")


def test_a_directory_without_yaml_files_is_a_problem(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello\n")
    [problem] = problems(tmp_path)
    assert problem.file == str(tmp_path)
    assert problem.message == "no *.yaml or *.yml files in this directory"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_file_is_a_problem(tmp_path: Path) -> None:
    secret = tmp_path / "secret.yaml"
    secret.write_text("version: 1\n")
    secret.chmod(0)
    [problem] = problems(secret)
    assert located(problem) == ("secret.yaml", 1, 1, "cannot read the file: Permission denied")


def test_an_unknown_field_suggests_the_closest_known_one() -> None:
    [problem] = problems("unknown_field.yaml")
    assert located(problem) == (
        "unknown_field.yaml",
        4,
        5,
        "unknown field 'nmae' (did you mean 'name'?)",
    )
    assert problem.hint.startswith("known fields here: name, avatar, link")


def test_a_user_without_a_name_is_reported_at_its_uid() -> None:
    [problem] = problems("missing_name.yaml")
    assert located(problem) == ("missing_name.yaml", 3, 3, "missing required field 'name'")
    assert problem.path == "users.alice.name"


def test_a_uid_with_a_space_is_reported_at_the_key() -> None:
    [problem] = problems("bad_uid.yaml")
    assert located(problem) == (
        "bad_uid.yaml",
        3,
        3,
        "the key 'alice smith' is not valid: a uid has only letters, digits, '_' and '-'",
    )


def test_a_uid_is_checked_against_the_providers_rule() -> None:
    found = problems("nexconn_uid.yaml", env={"KEY": "k", "SECRET": "s"})
    assert [located(p) for p in found] == [
        (
            "nexconn_uid.yaml",
            4,
            3,
            "'alice_ng' is not a valid uid for nexconn: letters and digits only, at most 64 characters",
        ),
    ]


def test_a_uid_declared_in_two_files_names_both_places() -> None:
    [problem] = problems("uid_twice")
    first = FIXTURES / "uid_twice" / "a.yaml"
    assert located(problem) == (
        "b.yaml",
        4,
        3,
        f"the uid 'alice' is declared twice; first at {first}:3:3",
    )


def test_a_second_provider_section_names_both_places() -> None:
    [problem] = problems("two_providers")
    first = FIXTURES / "two_providers" / "a.yaml"
    assert located(problem) == (
        "b.yaml",
        3,
        1,
        f"'provider' is declared twice; first at {first}:2:1",
    )


def test_a_user_cannot_block_itself() -> None:
    [problem] = problems("self_block.yaml")
    assert located(problem) == ("self_block.yaml", 5, 22, "'alice' cannot block itself")
    assert problem.path == "users.alice.blocklist[1]"


def test_a_protected_user_cannot_be_banned() -> None:
    [problem] = problems("protected_banned.yaml")
    assert located(problem) == (
        "protected_banned.yaml",
        8,
        3,
        "'admin' is protected and cannot be banned",
    )


def test_a_protected_user_cannot_be_deactivated() -> None:
    [problem] = problems("protected_inactive.yaml")
    assert located(problem) == (
        "protected_inactive.yaml",
        7,
        13,
        "'admin' is protected and cannot be deactivated",
    )


def test_a_ban_that_already_expired_must_be_removed() -> None:
    [problem] = problems("expired_ban.yaml")
    assert located(problem) == (
        "expired_ban.yaml",
        3,
        20,
        "the ban of 'mallory' already expired (2020-01-01T00:00:00Z)",
    )
    assert problem.hint.startswith("remove the ban")


def test_an_undefined_variable_names_it_and_says_to_set_it() -> None:
    [problem] = problems("undefined_env.yaml")
    assert located(problem) == (
        "undefined_env.yaml",
        5,
        13,
        "the environment variable CDN_BUCKET is not set",
    )
    assert problem.hint == "set CDN_BUCKET, or give a default: ${CDN_BUCKET:-value}"


def test_bans_on_cometchat_name_the_field_and_the_alternative() -> None:
    [problem] = problems("cometchat_bans.yaml", env={"COMETCHAT_API_KEY": "k"})
    assert located(problem) == (
        "cometchat_bans.yaml",
        10,
        1,
        "'bans' (app-level bans) are not supported by the cometchat provider",
    )
    assert problem.hint == "use active: false to deactivate the user"


def test_profile_whitelist_and_upper_case_uids_on_cometchat_are_refused() -> None:
    found = problems("cometchat_profile.yaml", env={"COMETCHAT_API_KEY": "k"})
    assert [located(p) for p in found] == [
        ("cometchat_profile.yaml", 6, 5, "'profile' is not supported by the cometchat provider"),
        ("cometchat_profile.yaml", 7, 5, "'whitelist' is not supported by the cometchat provider"),
        (
            "cometchat_profile.yaml",
            8,
            3,
            (
                "'Bob' is not a valid uid for cometchat: lower-case letters, digits, '_' and '-', "
                "at most 100 characters"
            ),
        ),
    ]
    assert found[0].hint.startswith("use metadata")
    assert found[2].hint == "use 'bob'"


def test_metadata_and_permanent_delete_on_nexconn_name_the_alternative() -> None:
    env = {"NEXCONN_APP_KEY": "k", "NEXCONN_APP_SECRET": "s"}
    found = problems("nexconn_metadata.yaml", env=env)
    assert [located(p) for p in found] == [
        (
            "nexconn_metadata.yaml",
            8,
            3,
            "prune: delete (permanent delete) is not supported by the nexconn provider",
        ),
        ("nexconn_metadata.yaml", 12, 5, "'metadata' is not supported by the nexconn provider"),
    ]
    assert found[0].hint == "use prune: deactivate (soft-delete); Nexconn has no permanent delete"
    assert found[1].hint == "use profile (hosted profile) and profile.ext fields"


def test_values_of_the_wrong_type_say_what_was_expected() -> None:
    found = problems("wrong_type.yaml")
    assert [located(p) for p in found] == [
        ("wrong_type.yaml", 5, 11, "must be a list, not text"),
        ("wrong_type.yaml", 6, 13, "must be true or false, not text"),
        ("wrong_type.yaml", 8, 11, "must be text, not false"),
    ]
    assert "quote it" in found[2].hint


def test_a_bad_limit_says_which_forms_are_accepted() -> None:
    found = problems("bad_limit.yaml")
    assert [located(p) for p in found] == [
        ("bad_limit.yaml", 3, 19, 'use a count (10) or a percentage ("25%")'),
        ("bad_limit.yaml", 4, 15, "must be at least 0"),
    ]


def test_a_secret_value_never_appears_in_a_problem() -> None:
    found = problems("literal_secret.yaml")
    assert [located(p) for p in found] == [
        ("literal_secret.yaml", 5, 11, "'mars' is not one of: us, eu, in"),
        ("literal_secret.yaml", 6, 12, "must be text, not a number"),
    ]
    assert not any("12345678" in p.render() for p in found)


def test_every_problem_of_every_file_is_reported_at_once(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("version: 1\nusers:\n  alice: {nmae: A}\n")
    (tmp_path / "b.yaml").write_text("users:\n  bob: {name: B, blocklist: [bob]}\n  c: [\n")
    (tmp_path / "c.yaml").write_text("bans:\n  eve: {until: 2020-01-01}\n")
    found = problems(tmp_path)
    assert [located(p)[:3] for p in found] == [
        ("a.yaml", 3, 11),
        ("b.yaml", 3, 7),  # the end of the file, not past it
        ("c.yaml", 2, 16),
    ]


def test_an_undefined_variable_is_not_also_a_schema_problem(tmp_path: Path) -> None:
    manifest = tmp_path / "rate.yaml"
    manifest.write_text(
        "version: 1\nprovider:\n  type: nexconn\n  region: sg\n  app_key: ${K:-k}\n  app_secret: ${S:-s}\n"
        "  rate: ${RATE}\n"
    )
    [problem] = problems(manifest)
    assert problem.message == "the environment variable RATE is not set"


def test_a_malformed_reference_says_how_to_escape_it(tmp_path: Path) -> None:
    manifest = tmp_path / "dollar.yaml"
    manifest.write_text("version: 1\nusers:\n  alice: {name: 'costs ${5'}\n")
    [problem] = problems(manifest)
    assert located(problem)[1:3] == (3, 17)
    assert problem.hint == "write $${ for a literal '${'"


def test_nexconn_needs_a_url_or_a_region(tmp_path: Path) -> None:
    manifest = tmp_path / "nexconn.yaml"
    manifest.write_text("version: 1\nprovider:\n  type: nexconn\n  app_key: ${K:-k}\n  app_secret: ${S:-s}\n")
    [problem] = problems(manifest)
    assert located(problem) == (
        "nexconn.yaml",
        3,
        3,
        "give the API's url, or its region (sg, us or sau)",
    )


def test_an_unknown_provider_type_suggests_the_closest(tmp_path: Path) -> None:
    manifest = tmp_path / "slack.yaml"
    manifest.write_text("version: 1\nprovider: {type: nexcon}\n")
    [problem] = problems(manifest)
    assert problem.message == "'nexcon' is not one of: local, nexconn, cometchat (did you mean 'nexconn'?)"


def test_whitelist_must_be_a_list_or_false(tmp_path: Path) -> None:
    manifest = tmp_path / "whitelist.yaml"
    manifest.write_text(
        "version: 1\nusers:\n  alice: {name: A, whitelist: true}\n  bob: {name: B, whitelist: [a, a]}\n"
    )
    found = problems(manifest)
    assert [located(p)[1:] for p in found] == [
        (3, 31, "use a list of uids, or false to turn whitelist mode off"),
        (4, 33, "'a' is listed more than once"),
    ]


def test_an_invalid_date_is_reported(tmp_path: Path) -> None:
    manifest = tmp_path / "dates.yaml"
    manifest.write_text(
        "version: 1\nusers:\n  a: {name: A, tokens_valid_after: 2026-02-30T00:00:00Z}\n"
        "bans:\n  b: {until: tomorrow}\n"
    )
    found = problems(manifest)
    assert [located(p)[1:] for p in found] == [
        (
            3,
            36,
            "'2026-02-30T00:00:00Z' is not a real date and time (day is out of range for month)",
        ),
        (5, 14, "use a date and time like 2026-12-31T00:00:00Z, or forever"),
    ]


def test_an_unsupported_version_is_refused(tmp_path: Path) -> None:
    manifest = tmp_path / "v2.yaml"
    manifest.write_text("version: 2\n")
    [problem] = problems(manifest)
    assert located(problem) == ("v2.yaml", 1, 10, "unsupported version 2")


def test_a_missing_version_is_reported_at_the_start_of_the_first_file(tmp_path: Path) -> None:
    manifest = tmp_path / "noversion.yaml"
    manifest.write_text("users: {}\n")
    [problem] = problems(manifest)
    assert located(problem) == ("noversion.yaml", 1, 1, "missing required field 'version'")


def test_cometchat_needs_an_app_id_or_a_url(tmp_path: Path) -> None:
    manifest = tmp_path / "cometchat.yaml"
    manifest.write_text("version: 1\nprovider:\n  type: cometchat\n  api_key: ${K:-k}\n  region: eu\n")
    [problem] = problems(manifest)
    assert located(problem) == (
        "cometchat.yaml",
        3,
        3,
        "give the app_id (and its region: us, eu or in), or the API's url",
    )


def test_a_credential_written_out_in_the_manifest_is_refused(tmp_path: Path) -> None:
    manifest = tmp_path / "leak.yaml"
    manifest.write_text(
        "version: 1\nprovider:\n  type: cometchat\n  app_id: a\n  api_key: sk-live-0123456789\n"
    )
    [problem] = problems(manifest)
    assert located(problem)[1:3] == (5, 12)
    assert "credentials must come from the environment" in problem.message
    assert problem.hint == "write api_key: ${COMETCHAT_API_KEY} and set that environment variable"
    assert "sk-live" not in problem.render()


def test_nan_and_infinity_are_refused(tmp_path: Path) -> None:
    manifest = tmp_path / "nan.yaml"
    manifest.write_text(
        "version: 1\nusers:\n  alice:\n    name: A\n    metadata: {f: .nan, deep: {g: -.inf}}\n"
    )
    found = problems(manifest)
    assert sorted(located(p)[1:] for p in found) == [
        (5, 19, "nan is not a usable number"),
        (5, 35, "-inf is not a usable number"),
    ]


def test_values_over_the_providers_limits_are_refused_before_any_call(tmp_path: Path) -> None:
    # 20 ext keys a user on Nexconn, 3 of which are chatroster's (owner, tokens, digest).
    ext = ", ".join(f"ext_k{i}: v" for i in range(18))
    manifest = tmp_path / "long.yaml"
    manifest.write_text(
        "version: 1\nprovider:\n  type: nexconn\n  region: sg\n  app_key: ${K:-k}\n"
        "  app_secret: ${S:-s}\nusers:\n  alice:\n    name: A\n"
        f"    profile: {{email: {'x' * 130}@e.com, ext: {{{ext}}}}}\n"
        f"    tags: [{'t' * 41}]\n"
    )
    found = {located(p)[3]: p for p in problems(manifest)}
    assert "136 characters, over the nexconn limit of 128" in found
    assert "18 entries, over the nexconn limit of 17" in found
    assert "41 characters, over the nexconn limit of 40" in found


def test_cometchat_metadata_over_5_kb_is_refused_before_any_call(tmp_path: Path) -> None:
    manifest = tmp_path / "big.yaml"
    manifest.write_text(
        "version: 1\nprovider:\n  type: cometchat\n  app_id: a\n  api_key: ${K:-k}\nusers:\n"
        f"  alice:\n    name: A\n    metadata: {{blob: {'x' * 5000}}}\n"
        f"  bob:\n    name: B\n    metadata: {{blob: {'x' * 4000}}}\n"
    )
    found = [located(p) for p in problems(manifest)]
    assert len(found) == 1
    line, message = found[0][1], found[0][3]
    assert line == 9 and "5011 bytes as JSON, over the cometchat limit of 4864" in message
