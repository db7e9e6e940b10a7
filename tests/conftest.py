# Fixtures shared by the test modules. Keep this file thin: each fixture lives in the
# module that owns it, and is re-exported here so that pytest finds it.

from collections.abc import Generator

import pytest
from emulator_process import emulator, emulator_factory  # noqa: F401
from vendor_specs import header, skip_is_a_failure


def pytest_report_header() -> str:
    return header()


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
