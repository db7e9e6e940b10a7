"""The vendors' own API descriptions, which some tests check the emulator against.

They are kept beside the repository, in ``../shared/conformance`` (never copied into it,
as the CometChat file may not be redistributed). A clone on its own has no such folder:
the tests that need a spec then skip, each saying why in one line. Where the folder
exists, a spec missing from it is a broken setup rather than a choice, so a skip that
blames a file inside it is turned into a failure (`conftest.py` applies this rule).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFORMANCE = ROOT.parent / "shared" / "conformance"
"""``../shared/conformance``, resolved from the repository."""

SPECS = ("cometchat/chat-apis.json", "nexconn/openapi.yaml")
"""The files tests read, relative to `CONFORMANCE`."""


REQUIRE = "CHATROSTER_REQUIRE_SPECS"
"""Set (by `.ci/run`) where the specs must be there: their absence is then an error
before any test runs, never a quietly weaker suite."""


def required_but_missing(environ: Mapping[str, str], conformance: Path = CONFORMANCE) -> str:
    """Why the run cannot go on without the specs, or "" when it can."""
    if not environ.get(REQUIRE):
        return ""
    if not conformance.is_dir():
        return f"{REQUIRE} is set but ../shared/conformance is not beside the repository"
    missing = missing_specs(conformance)
    return f"{REQUIRE} is set but specs are missing: {', '.join(missing)}" if missing else ""


def missing_specs(conformance: Path = CONFORMANCE) -> list[str]:
    """The specs absent from an existing conformance folder (none when it is absent)."""
    if not conformance.is_dir():
        return []
    return [name for name in SPECS if not (conformance / name).is_file()]


def skip_is_a_failure(reason: str, conformance: Path = CONFORMANCE) -> bool:
    """Whether a test skipped for ``reason`` should fail: it blames a file inside the
    conformance folder, and that folder exists (so the file was expected there)."""
    return conformance.is_dir() and str(conformance) in reason


def header(conformance: Path = CONFORMANCE) -> str:
    """One line for pytest's header: where the specs come from, or why checks skip."""
    if not conformance.is_dir():
        return (
            "vendor specs: ../shared/conformance is not beside the repository; "
            "the checks against them are skipped"
        )
    missing = missing_specs(conformance)
    if missing:
        return f"vendor specs: MISSING from ../shared/conformance: {', '.join(missing)}"
    return f"vendor specs: ../shared/conformance ({', '.join(SPECS)})"
