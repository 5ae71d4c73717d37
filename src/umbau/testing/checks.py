"""The checks of ``umbau test`` as pytest test functions.

Switch them on with one line in a ``conftest.py``::

    umbau_checks = True            # or a list: ["stairway", "data"]

The plugin then collects these functions there. They share one run of all checks
(the session fixture ``umbau_report``) and fail with the revision and the difference.
"""

from __future__ import annotations

import pytest

from umbau.testing.report import TestReport


def _assert(report: TestReport, check: str) -> None:
    status = report.checks[check]
    if status.startswith("skipped") or status == "not run":
        pytest.skip(status)
    if status != "passed":
        found = report.failures_of(check)
        lines = [f.describe() for f in found] or [status]
        pytest.fail("\n".join(lines), pytrace=False)


def test_umbau_single_head(umbau_report: TestReport) -> None:
    """The scripts have exactly one head."""
    _assert(umbau_report, "single-head")


def test_umbau_upgrade(umbau_report: TestReport) -> None:
    """Every revision upgrades from an empty database to head."""
    _assert(umbau_report, "upgrade")


def test_umbau_stairway(umbau_report: TestReport) -> None:
    """Every downgrade restores the schema from before its upgrade, and upgrading again
    gives the schema of the first upgrade."""
    _assert(umbau_report, "stairway")


def test_umbau_with_rows(umbau_report: TestReport) -> None:
    """Every step works on tables that hold generated rows."""
    _assert(umbau_report, "with-rows")


def test_umbau_data(umbau_report: TestReport) -> None:
    """Generated rows of tables a revision does not touch survive its steps."""
    _assert(umbau_report, "data")


def test_umbau_drift(umbau_report: TestReport) -> None:
    """The models match the database at head."""
    _assert(umbau_report, "drift")


def test_umbau_idempotent(umbau_report: TestReport) -> None:
    """A second `upgrade heads` changes nothing."""
    _assert(umbau_report, "idempotent")
