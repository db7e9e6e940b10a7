"""Hostile manifests: whatever the bytes, a located problem or a manifest, never a crash
and never a hang."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import stat
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatroster.errors import ManifestError, Problem
from chatroster.manifest import check, load, yamlsource
from chatroster.model import Manifest

NOW = datetime(2026, 6, 1, tzinfo=UTC)
HUGE = "9" * 5000
"""Past Python's limit of 4,300 digits for turning text into a number."""
T = TypeVar("T")
NOT_REGULAR = "not a regular file; give a manifest file or a directory of *.yaml files"


def problems(path: Path, env: dict[str, str] | None = None) -> list[Problem]:
    with pytest.raises(ManifestError) as caught:
        check([path], env={} if env is None else env, now=NOW)
    return list(caught.value.problems)


def write(tmp_path: Path, text: str, name: str = "m.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def where(problem: Problem) -> tuple[int, int, str]:
    return problem.line, problem.column, problem.message


# Numbers too large to use -------------------------------------------------------------

TOO_LARGE = "number too large (more than 640 digits)"


@pytest.mark.parametrize("block", [True, False], ids=["block style", "flow style"])
def test_a_huge_level_is_a_located_problem(tmp_path: Path, block: bool) -> None:
    profile = f"\n      level: {HUGE}" if block else f" {{level: {HUGE}}}"
    manifest = write(tmp_path, f"version: 1\nusers:\n  alice:\n    name: A\n    profile:{profile}\n")
    [problem] = problems(manifest)
    assert where(problem) == ((6, 14) if block else (5, 22)) + (TOO_LARGE,)
    assert problem.path == "users.alice.profile.level"
    assert "smaller number" in problem.hint


@pytest.mark.parametrize("text", [HUGE, "-" + HUGE])
def test_a_huge_version_is_a_located_problem(tmp_path: Path, text: str) -> None:
    [problem] = problems(write(tmp_path, f"version: {text}\n"))
    assert where(problem) == (1, 10, TOO_LARGE)


@pytest.mark.parametrize(
    "written",
    [
        HUGE,
        "0x" + "f" * 5000,  # hexadecimal: no limit in int(), but no way back to text
        "0b" + "1" * 5000,
        "0" + "7" * 5000,  # octal in YAML 1.1
        "1_" + "0" * 5000,
        "1" + ":59" * 3000,  # sexagesimal: 60 ** 3000
        "+" + HUGE,
    ],
    ids=["decimal", "hex", "binary", "octal", "underscores", "sexagesimal", "signed"],
)
def test_every_form_of_a_huge_integer_is_refused(tmp_path: Path, written: str) -> None:
    manifest = write(tmp_path, f"version: 1\npolicy:\n  max_deactivate: {written}\n")
    [problem] = problems(manifest)
    assert where(problem) == (3, 19, TOO_LARGE)
    assert problem.path == "policy.max_deactivate"


def test_a_long_but_small_integer_is_still_read(tmp_path: Path) -> None:
    manifest = write(tmp_path, f"version: 1\npolicy:\n  max_deactivate: {'9' * 640}\n")
    assert check([manifest], env={}).users == 0


def test_a_float_beyond_the_range_of_floats_is_refused(tmp_path: Path) -> None:
    manifest = write(
        tmp_path,
        "version: 1\nusers:\n  alice:\n    name: A\n    metadata: {big: 1.0e+999, small: -2.5e+400}\n",
    )
    found = problems(manifest)
    assert [where(p) for p in found] == [
        (5, 21, "number too large (beyond the range of a floating-point number)"),
        (5, 38, "number too large (beyond the range of a floating-point number)"),
    ]


def test_a_huge_number_in_a_list_is_one_problem(tmp_path: Path) -> None:
    manifest = write(
        tmp_path,
        f"version: 1\nusers:\n  alice:\n    name: A\n"
        f"    metadata: {{'{'1' * 1000}': x}}\n    tags: [{HUGE}]\n",
    )
    [problem] = problems(manifest)  # not also "must be text": it was told once
    assert where(problem) == (6, 12, TOO_LARGE)
    assert problem.path == "users.alice.tags[0]"


def test_a_variable_holding_many_digits_stays_text(tmp_path: Path) -> None:
    manifest = write(tmp_path, "version: 1\nusers:\n  alice:\n    name: A\n    metadata: {n: '${N}'}\n")
    loaded = load([manifest], env={"N": HUGE}, now=NOW)
    assert loaded.desired.users["alice"].metadata == {"n": HUGE}


# NUL and other control characters where they cannot be passed on ------------------------


@pytest.mark.parametrize(
    ("setting", "written", "column"),
    [
        ("path", r'"a\0b.db"', 9),
        ("path", r'"a\nb.db"', 9),
    ],
)
def test_a_control_character_in_the_local_path_is_refused(
    tmp_path: Path, setting: str, written: str, column: int
) -> None:
    manifest = write(tmp_path, f"version: 1\nprovider:\n  type: local\n  {setting}: {written}\n")
    [problem] = problems(manifest)
    assert (problem.line, problem.column, problem.path) == (4, column, f"provider.{setting}")
    assert "control character" in problem.message
    assert "\0" not in problem.render() and "\n" not in problem.message


@pytest.mark.parametrize("setting", ["url", "backup_url"])
def test_a_nul_in_a_url_is_refused(tmp_path: Path, setting: str) -> None:
    manifest = write(
        tmp_path,
        "version: 1\nprovider:\n  type: nexconn\n  region: sg\n  app_key: ${K:-k}\n"
        f'  app_secret: ${{S:-s}}\n  {setting}: "http://127.0.0.1:8080/\\0x"\n',
    )
    [problem] = problems(manifest)
    assert (problem.line, problem.path) == (7, f"provider.{setting}")
    assert "\0" not in problem.render()


def test_a_nul_in_the_app_id_is_refused(tmp_path: Path) -> None:
    manifest = write(
        tmp_path, 'version: 1\nprovider:\n  type: cometchat\n  api_key: ${K:-k}\n  app_id: "ab\\0c"\n'
    )
    [problem] = problems(manifest)
    assert (problem.line, problem.column, problem.path) == (5, 11, "provider.app_id")


def test_a_control_character_in_a_credential_is_refused_without_showing_it(
    tmp_path: Path,
) -> None:
    manifest = write(
        tmp_path, "version: 1\nprovider:\n  type: cometchat\n  app_id: a\n  api_key: ${COMETCHAT_API_KEY}\n"
    )
    [problem] = problems(manifest, env={"COMETCHAT_API_KEY": "sk-live-123\n"})
    assert (problem.line, problem.column, problem.path) == (5, 12, "provider.api_key")
    assert "sk-live" not in problem.render()
    assert "line break" in problem.message


def test_a_nul_in_a_name_is_kept_it_travels_as_json(tmp_path: Path) -> None:
    manifest = write(tmp_path, 'version: 1\nusers:\n  alice:\n    name: "A\\0B"\n')
    assert load([manifest], env={}, now=NOW).desired.users["alice"].name == "A\0B"


def test_a_control_character_in_a_key_is_shown_escaped(tmp_path: Path) -> None:
    manifest = write(tmp_path, 'version: 1\nusers:\n  alice:\n    name: A\n    "\\e[2Jx": 1\n')
    [problem] = problems(manifest)
    assert "\x1b" not in problem.render()
    assert r"unknown field '\x1b[2Jx'" in problem.message


# Files that are not regular files ----------------------------------------------------


def test_a_fifo_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "m.yaml"
    os.mkfifo(fifo)
    [problem] = no_hang(lambda: problems(fifo), fifo)
    assert (problem.file, problem.line, problem.column, problem.message) == (str(fifo), 1, 1, NOT_REGULAR)


def test_a_fifo_in_a_manifest_directory_is_refused_at_once(tmp_path: Path) -> None:
    write(tmp_path, "version: 1\n", "00-settings.yaml")
    os.mkfifo(tmp_path / "10-users.yaml")
    [problem] = no_hang(lambda: problems(tmp_path), tmp_path / "10-users.yaml")
    assert (problem.file, problem.message) == (str(tmp_path / "10-users.yaml"), NOT_REGULAR)


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom", "/dev/null"])
def test_a_device_is_refused_at_once(device: str) -> None:
    if not os.path.exists(device):
        pytest.skip(f"no {device} here")
    [problem] = no_hang(lambda: problems(Path(device)))
    assert (problem.file, problem.message) == (device, NOT_REGULAR)


def test_a_socket_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(path))
        [problem] = problems(path)
    assert problem.message == NOT_REGULAR


def test_a_directory_named_like_a_yaml_file_in_a_manifest_directory_is_refused(
    tmp_path: Path,
) -> None:
    write(tmp_path, "version: 1\n", "00-settings.yaml")
    (tmp_path / "10-users.yaml").mkdir()
    [problem] = problems(tmp_path)
    assert (problem.file, problem.message) == (str(tmp_path / "10-users.yaml"), NOT_REGULAR)


def test_a_symlink_to_a_regular_file_is_read(tmp_path: Path) -> None:
    target = write(tmp_path, "version: 1\nusers:\n  alice: {name: A}\n", "real.txt")
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "m.yaml").symlink_to(target)
    assert check([tmp_path / "dir"], env={}).users == 1
    assert check([tmp_path / "dir" / "m.yaml"], env={}).users == 1


def test_a_broken_symlink_or_a_loop_is_a_problem(tmp_path: Path) -> None:
    (tmp_path / "gone.yaml").symlink_to(tmp_path / "nowhere.yaml")
    (tmp_path / "loop.yaml").symlink_to(tmp_path / "loop.yaml")
    found = problems(tmp_path)
    assert [(Path(p.file).name, p.line) for p in found] == [("gone.yaml", 1), ("loop.yaml", 1)]
    assert "no such file" in found[0].message.lower()


def test_a_file_swapped_for_a_fifo_after_the_check_does_not_hang(tmp_path: Path) -> None:
    """The type is checked again on the open file: a swap between the two is caught."""
    fifo = tmp_path / "m.yaml"
    os.mkfifo(fifo)
    document, found = no_hang(lambda: yamlsource.read(fifo, str(fifo)), fifo)
    assert document is None
    assert [p.message for p in found] == [NOT_REGULAR]


@pytest.mark.skipif(os.geteuid() == 0, reason="root lists any directory")
def test_an_unlistable_directory_is_a_problem(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0)
    try:
        [problem] = problems(locked)
    finally:
        locked.chmod(stat.S_IRWXU)
    assert problem.message.startswith("cannot read the directory")


def no_hang(call: Callable[[], T], fifo: Path | None = None, seconds: float = 10) -> T:
    """``call()``, failing the test instead of hanging when it blocks on ``fifo``."""
    pool = ThreadPoolExecutor(max_workers=1)
    try:
        return pool.submit(call).result(timeout=seconds)
    except FutureTimeout:
        if fifo is not None:  # a writer that closes at once: the blocked reader sees the end
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail(f"blocked for {seconds} s")
    finally:
        pool.shutdown(wait=False)


# YAML syntax errors at their start ----------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "column", "words"),
    [
        (
            'version: 1\nusers:\n  alice:\n    name: "Alice\n    role: x\n  bob:\n    name: B\n',
            4,
            11,
            "quoted value",
        ),
        ("version: 1\nusers:\n  alice:\n    name: 'Alice\n", 4, 11, "quoted value"),
        ('version: 1\nname: "Alice\n---\nx: 1\n', 2, 7, "quoted value"),
        ('version: 1\nowner: "abc', 2, 8, "quoted value"),
        ("version: 1\nusers:\n  alice:\n    tags: [a, b\n    role: x\n", 4, 11, "'['"),
        ("version: 1\nusers:\n  alice: {name: A\n  bob:\n    name: B\n", 3, 10, "'{'"),
    ],
    ids=["double quote", "single quote", "quote then ---", "quote at the end", "flow list", "flow mapping"],
)
def test_an_unclosed_quote_or_bracket_is_located_where_it_opens(
    tmp_path: Path, text: str, line: int, column: int, words: str
) -> None:
    [problem] = problems(write(tmp_path, text))
    assert (problem.line, problem.column) == (line, column)
    assert problem.message.startswith("YAML syntax error")
    assert words in problem.message or words in problem.hint


def test_a_problem_found_on_the_same_line_stays_where_it_is_found(tmp_path: Path) -> None:
    [problem] = problems(write(tmp_path, 'version: 1\nowner: "ab\\qc"\n'))
    assert (problem.line, problem.column) == (2, 11)  # the unknown escape, not the quote


def test_a_syntax_error_is_never_located_past_the_end_of_the_file(tmp_path: Path) -> None:
    text = "version: 1\nusers:\n  alice:\n    name: A\n    tags: [a,\n"
    [problem] = problems(write(tmp_path, text))
    assert problem.line <= text.count("\n")


# Deep nesting ------------------------------------------------------------------------


@pytest.mark.parametrize("block", [True, False], ids=["block style", "flow style"])
def test_nesting_deeper_than_any_manifest_needs_is_refused(tmp_path: Path, block: bool) -> None:
    depth = 300
    if block:
        nested = "".join(f"\n{'  ' * (level + 3)}k:" for level in range(depth)) + " x"
    else:
        nested = " {x: " + "[" * depth + "]" * depth + "}"
    text = f"version: 1\nusers:\n  alice:\n    name: A\n    metadata:{nested}\n# ${{X:-x}}\n"
    [problem] = problems(write(tmp_path, text))
    assert problem.message == "nested more than 100 levels deep"
    assert (problem.line, problem.column) == ((103, 201) if block else (5, 115))


# Patterns read as JSON Schema reads them ---------------------------------------------


def test_a_uid_ending_in_a_line_break_is_refused(tmp_path: Path) -> None:
    manifest = write(tmp_path, 'version: 1\nusers:\n  "alice\\n": {name: A}\nowner: "ops\\n"\n')
    found = problems(manifest)
    assert [(p.line, p.column) for p in found] == [(3, 3), (4, 8)]
    assert r"the key 'alice\n' is not valid" in found[0].message


# Whatever the bytes: a manifest, or problems at their places -------------------------

QUICKSTART = (Path(__file__).parent.parent / "examples" / "quickstart.yaml").read_bytes()

HOSTILE_SCALARS = [
    HUGE,
    "-" + HUGE,
    "0x" + "f" * 3000,
    "0b" + "1" * 3000,
    "0" + "7" * 3000,
    "1_" + "0" * 3000,
    "1" + ":59" * 2000,
    "1.0e+999",
    "-1.5e+999",
    ".inf",
    "-.inf",
    ".nan",
    "1e999",
    "190:20:30.5",
    "~",
    "null",
    "yes",
    "off",
    "0",
    "-0",
    "1.5",
    "100",
    "101",
    "2026-02-30",
    "2026-12-31T00:00:00Z",
    "forever",
    "25%",
    "0.5%",
    "'quoted'",
    '"\\0"',
    '"\\x00"',
    '"\\ud800"',
    '"\\udfff"',
    '"\\e[2J"',
    '"\\u2028"',
    '"\\x85"',
    '"\\t"',
    '"a\\nb"',
    '"\\U0010FFFF"',
    "'${X}'",
    "${UNSET}",
    "${X:-d}",
    "$${X}",
    "${",
    "!!python/object/apply:os.system [echo]",
    "!!str 5",
    "!!int 5",
    "!!float 1",
    "!secret x",
    "!<tag:x> y",
    "&a x",
    "*a",
    "*nowhere",
    "&a [*a]",
    "[]",
    "{}",
    "[a, a]",
    "{a: 1, a: 2}",
    "[" * 50 + "]" * 50,
    "x" * 2000,
    "http://h/\x01",
]
"""Values that are valid YAML in flow and block context alike, but hostile to what follows."""
SYNTAX_BREAKERS = [
    "|\n  block",
    "- x",
    "? x",
    "a: b: c",
    "\t",
    "'unclosed",
    '"unclosed',
    "[unclosed",
    "{unclosed",
    "@",
    "`",
    "%",
    "k" * 1100 + ": v",
    "\ufeff",
    "--- x",
]
POISON = [
    HUGE,
    "0x" + "f" * 3000,
    "1" + ":59" * 2000,
    "1.0e+999",
    ".nan",
    '"a\\0b"',
    '"\\ud800"',
    '"\\e[2J"',
    "&a x",
    "*a",
    "!!python/object/new:os.system [x]",
    "[" * 120 + "]" * 120,
]
"""The values most likely to break what comes after the reader: drawn half the time."""
HOSTILE_KEYS = [
    "name",
    "version",
    "users",
    "alice",
    "'12345'",
    "12345",
    "~",
    "null",
    "true",
    "1.5",
    "0x1f",
    "[a, b]",
    "{a: b}",
    "'k' ",
    "k" * 1100,
    '"\\0"',
    '"\\ud800"',
    "<<",
    "=",
    "-",
    "!!str k",
    "&k k",
    "*k",
    "'alice smith'",
    "Alice",
    "a.b",
    "'a\\nb'",
]
INSERTIONS = [
    b"\x00",
    b"\xff",
    b"\xfe",
    b"\xc3",
    b"\xed\xa0\x80",
    b"\xef\xbb\xbf",
    b"\xfe\xff",
    b"\t",
    b"\r",
    b"\r\n",
    b"\x07",
    b"\x1b",
    b"\x85",
    "\u2028".encode(),
    b"\n",
    b" ",
    b"  ",
    b"#",
    b":",
    b": ",
    b"- ",
    b"? ",
    b"---\n",
    b"...\n",
    b"%YAML 1.1\n",
    b"&a ",
    b"*a",
    b"!!python/object:os.system ",
    b"!x ",
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b'"',
    b"'",
    b"\\",
    b"|",
    b">",
    b"${",
    b"${X}",
    b'"\\ud800"',
    b'"\\0"',
    HUGE.encode(),
    b"1.0e+999",
    b".nan",
    b"<<: *a\n",
    b"x" * 1100,
]

ENV = {"X": "x", "NEXCONN_APP_KEY": "k", "NEXCONN_APP_SECRET": "s", "COMETCHAT_API_KEY": "k"}


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hostile") / "m.yaml"


PARSERS = st.sampled_from([yaml.CSafeLoader, yaml.SafeLoader] if yaml.__with_libyaml__ else [yaml.SafeLoader])
"""Either parser PyYAML may have: libyaml's, or its own where libyaml is missing."""


@contextmanager
def parsing_with(parser: Any) -> Iterator[None]:
    kept = yamlsource.Parser
    yamlsource.Parser = parser
    try:
        yield
    finally:
        yamlsource.Parser = kept


def assert_loaded_or_located(target: Path, raw: bytes) -> None:
    """Both ways in (validate, offline; load, for plan) give a manifest, or a
    `ManifestError` whose every problem is at a place in the file and prints."""
    target.write_bytes(raw)
    for attempt in (
        lambda: check([target], env=ENV, now=NOW, offline=True),
        lambda: assert_usable(load([target], env=ENV, now=NOW)),
    ):
        try:
            attempt()
        except ManifestError as error:
            assert error.problems
            for problem in error.problems:
                assert problem.file == str(target)
                assert problem.line >= 1 and problem.column >= 1, problem
                assert problem.message
                problem.render().encode("utf-8")  # no lone surrogate reaches the terminal
                assert "\x00" not in problem.render() and "\x1b" not in problem.render()


def assert_usable(manifest: Manifest) -> None:
    """What validation accepts can be passed on: as JSON and UTF-8 to a platform, as a
    path to SQLite, as a URL to HTTP."""
    users = _plain(list(manifest.desired.users.values()))
    json.dumps(users, default=str, allow_nan=False, ensure_ascii=False).encode("utf-8")
    for key in ("path", "url", "backup_url", "app_id"):
        value = manifest.provider.settings.get(key)
        if isinstance(value, str):
            value.encode("utf-8")
            assert not any(ord(char) < 0x20 or char == "\x7f" for char in value), (key, value)


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(item) for item in value]
    return value


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """The quickstart example with a hostile value in one of its slots, then edited at
    random a few more times."""
    raw = _hostile_value(draw, QUICKSTART)
    for _ in range(draw(st.integers(0, 3))):
        edit = draw(st.sampled_from([_byte_edit, _line_edit, _hostile_value]))
        raw = edit(draw, raw)
    return raw


def _hostile_value(draw: st.DrawFn, raw: bytes) -> bytes:
    lines = raw.split(b"\n")
    keyed = [number for number, line in enumerate(lines) if b": " in line] or [0]
    index = draw(st.sampled_from(keyed))
    key, _, _ = lines[index].partition(b": ")
    value = draw(st.sampled_from(POISON) | st.sampled_from(HOSTILE_SCALARS))
    lines[index] = key + b": " + value.encode()
    return b"\n".join(lines)


def _byte_edit(draw: st.DrawFn, raw: bytes) -> bytes:
    at = draw(st.integers(0, len(raw)))
    edit = draw(st.sampled_from(["insert", "replace", "delete", "byte"]))
    if edit == "insert":
        return raw[:at] + draw(st.sampled_from(INSERTIONS)) + raw[at:]
    if edit == "replace":
        return raw[:at] + draw(st.sampled_from(INSERTIONS)) + raw[at + draw(st.integers(1, 8)) :]
    if edit == "delete":
        return raw[:at] + raw[at + draw(st.integers(1, 40)) :]
    return raw[:at] + bytes([draw(st.integers(0, 255))]) + raw[at + 1 :]


def _line_edit(draw: st.DrawFn, raw: bytes) -> bytes:
    lines = raw.split(b"\n")
    index = draw(st.integers(0, len(lines) - 1))
    edit = draw(st.sampled_from(["duplicate", "drop", "indent", "dedent", "swap"]))
    if edit == "duplicate":
        lines.insert(index, lines[index])
    elif edit == "drop":
        del lines[index]
    elif edit == "indent":
        lines[index] = b" " * draw(st.integers(1, 5)) + lines[index]
    elif edit == "dedent":
        lines[index] = lines[index].lstrip(b" ")
    else:
        other = draw(st.integers(0, len(lines) - 1))
        lines[index], lines[other] = lines[other], lines[index]
    return b"\n".join(lines)


def _nodes() -> st.SearchStrategy[str]:
    """Flow-style YAML values, hostile ones among them, nested."""
    scalar = (
        st.sampled_from(POISON) | st.sampled_from(HOSTILE_SCALARS) | st.text(max_size=12).map(_double_quoted)
    )
    return st.recursive(
        scalar,
        lambda inner: (
            st.lists(inner, max_size=3).map(lambda items: f"[{', '.join(items)}]")
            | st.lists(st.tuples(_keys(), inner), max_size=3).map(
                lambda pairs: "{" + ", ".join(f"{k}: {v}" for k, v in pairs) + "}"
            )
        ),
        max_leaves=8,
    )


def _keys() -> st.SearchStrategy[str]:
    return st.sampled_from(HOSTILE_KEYS) | st.text(max_size=8).map(_double_quoted)


def _double_quoted(text: str) -> str:
    """Any text as YAML double-quoted: control characters and surrogates as escapes."""
    return (
        '"'
        + "".join(
            char
            if char.isprintable() and char not in '"\\'
            else f"\\u{ord(char):04x}"
            if ord(char) < 0x10000
            else f"\\U{ord(char):08x}"
            for char in text
        )
        + '"'
    )


@st.composite
def generated(draw: st.DrawFn) -> bytes:
    """A manifest's outline, its sections in any order, with hostile keys and values in
    its slots; now and then a line that breaks the YAML."""
    value = _nodes()
    fields = draw(
        st.lists(
            st.sampled_from(
                [
                    "name",
                    "avatar",
                    "role",
                    "metadata",
                    "tags",
                    "profile",
                    "active",
                    "blocklist",
                    "whitelist",
                    "tokens_valid_after",
                    "level",
                ]
            ),
            max_size=4,
            unique=True,
        )
    )
    provider = draw(st.sampled_from(["path", "url", "app_id", "api_key", "region"]))
    policy = draw(st.sampled_from(["max_deactivate", "protected", "prune"]))
    sections = [
        f"version: {draw(st.just('1') | value)}",
        (
            f"provider:\n  type: {draw(st.sampled_from(['local', 'nexconn', 'cometchat']))}\n"
            f"  {provider}: {draw(value)}"
        ),
        f"policy:\n  {policy}: {draw(value)}",
        f"{draw(_keys())}: {draw(value)}",
        f"users:\n  {draw(_keys())}:\n    name: A"
        + "".join(f"\n    {field}: {draw(value)}" for field in fields),
        f"bans:\n  {draw(_keys())}: {{until: {draw(value)}}}",
    ]
    lines = "\n".join(draw(st.permutations(sections))).split("\n")
    if draw(st.integers(0, 9)) == 7:  # not 0, which Hypothesis draws far more often
        lines.insert(draw(st.integers(0, len(lines))), draw(st.sampled_from(SYNTAX_BREAKERS)))
    prefix = draw(st.sampled_from([b"", b"\xef\xbb\xbf", b"%YAML 1.1\n---\n", b"---\n"]))
    return prefix + "\n".join(lines).encode("utf-8", "surrogatepass")


HOSTILE = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@settings(HOSTILE, max_examples=300)
@given(raw=mutated(), parser=PARSERS)
def test_a_mutated_example_is_read_or_refused_at_its_place(target: Path, parser: Any, raw: bytes) -> None:
    with parsing_with(parser):
        assert_loaded_or_located(target, raw)


@HOSTILE
@given(raw=generated(), parser=PARSERS)
def test_hostile_keys_and_values_are_read_or_refused_at_their_place(
    target: Path, parser: Any, raw: bytes
) -> None:
    with parsing_with(parser):
        assert_loaded_or_located(target, raw)


@HOSTILE
@given(
    raw=st.binary(max_size=200),
    where=st.sampled_from(["alone", "after", "inside"]),
    parser=PARSERS,
)
def test_arbitrary_bytes_are_read_or_refused_at_their_place(
    target: Path, parser: Any, raw: bytes, where: str
) -> None:
    if where == "after":
        raw = b"version: 1\nusers:\n  alice:\n    name: " + raw
    elif where == "inside":
        raw = b'version: 1\nusers:\n  alice: {name: "' + raw + b'"}\n'
    with parsing_with(parser):
        assert_loaded_or_located(target, raw)


@pytest.mark.parametrize("kind", ["[local]", "{a: b}", "1", "~"])
def test_a_provider_type_that_is_not_text_is_a_problem(tmp_path: Path, kind: str) -> None:
    [problem] = problems(write(tmp_path, f"version: 1\nprovider:\n  type: {kind}\n"))
    assert (problem.line, problem.column, problem.path) == (3, 9, "provider.type")


def test_without_libyaml_a_lone_surrogate_escape_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(yamlsource, "Parser", yaml.SafeLoader)
    manifest = write(tmp_path, 'version: 1\nusers:\n  alice: {name: "\\ud83d\\ude00"}\n')
    [problem] = problems(manifest)
    assert (problem.line, problem.column, problem.path) == (3, 17, "users.alice.name")
    assert "lone surrogate" in problem.message


def test_without_libyaml_a_forbidden_character_is_located(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(yamlsource, "Parser", yaml.SafeLoader)
    [problem] = problems(write(tmp_path, "version: 1\nowner: a\x07b\n"))
    assert (problem.line, problem.column) == (2, 9)
