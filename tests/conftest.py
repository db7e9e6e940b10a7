# Fixtures shared by the test modules. Keep this file thin: each fixture lives in the
# module that owns it, and is re-exported here so that pytest finds it.

import os
from collections.abc import Generator

import pytest
from emulator_process import emulator, emulator_factory  # noqa: F401
from hypothesis import Phase, settings
from vendor_specs import header, required_but_missing, skip_is_a_failure

# Mutation runs (docs/mutation.md) load this profile: the same examples every run, so a
# survivor can be reproduced, and a failing example is not shrunk (a killed mutant needs
# no minimal example, and shrinking one can take longer than the whole run's timeout).
settings.register_profile(
    "mutation", derandomize=True, database=None, phases=[Phase.explicit, Phase.reuse, Phase.generate]
)


def pytest_report_header() -> str:
    return header()


def pytest_sessionstart(session: pytest.Session) -> None:
    """In CI the vendor specs must be there (see vendor_specs.REQUIRE)."""
    problem = required_but_missing(os.environ)
    if problem:
        raise pytest.UsageError(problem)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A test skipped for want of a vendor spec fails when ../shared/conformance exists:
    the spec should have been there (see vendor_specs.py)."""
    report = yield
    if report.skipped and isinstance(report.longrepr, tuple):
        reason = str(report.longrepr[2])
        if skip_is_a_failure(reason):
            report.outcome = "failed"
            report.longrepr = f"{reason}\n(../shared/conformance exists, so this file should too)"
    return report
