"""The fast reader of plain block-style YAML gives exactly the data the precise reader
gives, or leaves the file to it: never a different value, never a missed problem."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatroster.export import dump_yaml
from chatroster.manifest import blockstyle
from chatroster.manifest.yamlsource import _Walker

ROOT = Path(__file__).parent.parent
MANIFESTS = sorted(
    [*(ROOT / "tests" / "fixtures" / "manifests").rglob("*.y*ml"), *(ROOT / "examples").glob("*.yaml")]
)


def precise(text: str) -> Any:
    """What the event walker reads, or ``None`` when it finds any problem."""
    walker = _Walker("test.yaml", text)
    data, failure = walker.run()
    if failure is not None or walker.refusals or walker.duplicates:
        return None
    return data


def assert_same_or_deferred(text: str) -> None:
    fast = blockstyle.load(text)
    if fast is not None:
        assert fast == precise(text)
        assert _types(fast) == _types(precise(text))  # 1 and True and 1.0 are equal in Python


def _types(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _types(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_types(item) for item in value]
    return type(value).__name__


def bench_like(n: int) -> dict[str, Any]:
    users = {
        f"u{i}": {
            "name": f"User {i}",
            "avatar": f"https://example.com/a/{i}.png",
            "tags": ["staff", f"team{i % 3}"],
            "metadata": {"team": f"t{i}", "level": i % 7, "on": i % 2 == 0},
            "profile": {"email": f"user{i}@example.com", "ext": {"ext_dept": "eng"}},
            "blocklist": [f"u{(i + 1) % n}"],
        }
        for i in range(n)
    }
    return {
        "version": 1,
        "provider": {"type": "local"},
        "owner": "ops",
        "users": users,
        "bans": {"u0": {"until": "forever"}, "u1": {"until": "2030-01-01T00:00:00Z"}},
    }


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_fixture_and_example_reads_the_same_or_is_left_to_the_precise_reader(
    path: Path,
) -> None:
    assert_same_or_deferred(path.read_text(encoding="utf-8"))


def test_a_manifest_written_by_yaml_safe_dump_takes_the_fast_path() -> None:
    text = yaml.safe_dump(bench_like(50), sort_keys=False)
    assert blockstyle.load(text) == precise(text) == bench_like(50)


def test_a_manifest_written_by_export_takes_the_fast_path() -> None:
    data = bench_like(20)
    data["users"]["u3"].update(metadata={}, tags=[], status_message="12:30")
    data["users"]["u4"]["name"] = "O'Brien: the second"
    text = dump_yaml(data)
    assert blockstyle.load(text) is not None
    assert blockstyle.load(text) == precise(text)


@pytest.mark.parametrize(
    "text",
    [
        "a: &x 1\nb: *x\n",  # anchor, alias
        "a: !!str 1\n",  # tag
        "a: [1, 2]\n",  # flow sequence
        "a: {b: 1}\n",  # flow mapping
        "a: |\n  text\n",  # block scalar
        "a: 1\na: 2\n",  # duplicate key
        "a: one\n  two\n",  # multi-line plain scalar
        "a: 1 # comment\n",  # comment after a value
        "a:\tb\n",  # tab
        "a: 1\r\nb: 2\r\n",  # CRLF
        "---\na: 1\n",  # document marker
        "a: 1\n---\nb: 2\n",  # second document
        'a: "x\\ty"\n',  # escape
        "a:\n  - x\n  b: 1\n",  # key beside an indented sequence
        "a:\n  b: 1\n c: 2\n",  # between two levels
        "a:\n- - x\n",  # nested sequence
        "a:\n- b: 1\n",  # mapping in a sequence
        "'a b': 1\n",  # quoted key with a space
        "a: 'x' 'y'\n",  # two quoted texts
        'a: "x" "y"\n',
        "a b: 1\n",  # key with a space
        "a: b: c\n",  # mapping value in a plain scalar
        "a: b:\n",  # ends with a colon
        "a: -\n",  # lone dash
        "? a\n: 1\n",  # complex key
        "- a\n- b\n",  # not a mapping
        "  a: 1\n",  # indented root
        "a: \x85b\n",  # NEL, a line break to YAML
        "# only a comment\n",
        "",
    ],
)
def test_anything_unusual_is_left_to_the_precise_reader(text: str) -> None:
    assert blockstyle.load(text) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: 'it''s'\n", {"a": "it's"}),
        ("'007': 1\n", {"007": 1}),
        ('"on": "yes"\n', {"on": "yes"}),
        ("a: '12:30 # x'\n", {"a": "12:30 # x"}),
        ("a: ''\n", {"a": ""}),
        ("a: []\nb: {}\n", {"a": [], "b": {}}),
    ],
)
def test_simple_quoting_and_empty_collections_take_the_fast_path(text: str, expected: dict[str, Any]) -> None:
    assert blockstyle.load(text) == precise(text) == expected


KEYS = st.sampled_from(["a", "b", "uid-1", "x_y", "on", "null", "1", "007", "a.b", "~"])
TEXT = st.text(
    alphabet=st.sampled_from(list("ab -:#'\"&*!|>%@`[]{},?~.0123456789eE+_xoyYnN\\é") + ["\u00a0"]),
    max_size=8,
)
WORDS = st.sampled_from(
    [
        "abc",
        "x y",
        "12",
        "-3",
        "0o7",
        "1.5",
        "1e3",
        "yes",
        "No",
        "null",
        "~",
        "2026-01-01",
        "12:30",
        "a:b",
        "a#b",
        "https://e.com/a?b=1&c#d",
        "Zoë",
        "${NAME:-x}",
        "<<",
        "=",
    ]
)
SCALARS = st.one_of(
    TEXT,
    st.integers(-(10**6), 10**6),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=False, allow_infinity=False),
)
DATA = st.dictionaries(
    KEYS,
    st.recursive(
        SCALARS,
        lambda inner: st.lists(SCALARS, max_size=3) | st.dictionaries(KEYS, inner, max_size=3),
        max_leaves=8,
    ),
    min_size=1,
    max_size=4,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=DATA, indent=st.sampled_from([2, 4]), flow=st.sampled_from([False, None]))
def test_dumped_data_reads_the_same_or_is_left_to_the_precise_reader(
    data: dict[str, Any], indent: int, flow: bool | None
) -> None:
    text = yaml.safe_dump(data, sort_keys=False, indent=indent, default_flow_style=flow, allow_unicode=True)
    assert_same_or_deferred(text)


@st.composite
def block_texts(draw: st.DrawFn) -> str:
    """Block-style YAML as a person or a program might write it: bare, quoted or odd
    keys and values, two ways to indent a list, blank lines, comments, trailing spaces."""
    lines: list[str] = []

    def key() -> str:
        name = draw(KEYS)
        return draw(st.sampled_from([name] * 5 + [f"'{name}'", f'"{name}"', name + " "]))

    def scalar() -> str:
        text = draw(WORDS | TEXT)
        return draw(st.sampled_from([text] * 4 + [f"'{text}'", f'"{text}"', text + "  ", text + " #"]))

    def mapping(indent: int, depth: int) -> None:
        for _ in range(draw(st.integers(1, 3))):
            if draw(st.integers(0, 5)) == 0:
                lines.append(draw(st.sampled_from(["", "   ", "# note", "  # note"])))
            head = " " * indent + key() + ":"
            kind = draw(st.sampled_from(["scalar", "list", "map", "empty"] if depth else ["scalar"]))
            if kind == "scalar":
                lines.append(head + " " + scalar())
            elif kind == "empty":
                lines.append(head + draw(st.sampled_from([" []", " {}", "", "  "])))
            elif kind == "list":
                lines.append(head)
                inner = indent + draw(st.sampled_from([0, 1, 2]))
                lines.extend(" " * inner + "- " + scalar() for _ in range(draw(st.integers(1, 3))))
            else:
                lines.append(head)
                mapping(indent + draw(st.sampled_from([1, 2, 4])), depth - 1)

    mapping(0, 3)
    return "\n".join(lines) + draw(st.sampled_from(["\n", ""]))


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=block_texts())
def test_block_style_text_reads_the_same_or_is_left_to_the_precise_reader(text: str) -> None:
    assert_same_or_deferred(text)


LINES = st.lists(
    st.tuples(
        st.sampled_from([0, 1, 2, 4]),
        st.sampled_from(
            [
                "a:",
                "b:",
                "a: 1",
                "b: x y",
                "c: 'q'",
                'd: "q"',
                "- x",
                "- 2",
                "- ",
                "e: []",
                "f: {}",
                "# note",
                "",
                "g: yes",
                "h: 1.5",
                "i: ~",
                "j: x:y",
                "k: x #y",
                "l: x  ",
                "m: 2026-01-01",
                "n:   spaced",
                "- 'q'",
                "o: -1",
                "p: a: b",
                "q: x:",
            ]
        ),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=LINES)
def test_any_arrangement_of_lines_reads_the_same_or_is_left_to_the_precise_reader(
    lines: list[tuple[int, str]],
) -> None:
    assert_same_or_deferred("".join(" " * indent + line + "\n" for indent, line in lines))
