"""Fixtures of the system tests."""

from __future__ import annotations

import pytest
from support.faults import RESULTS


@pytest.fixture(scope="session")
def fault_table():
    """The table of this run's fault scenarios (every tests/system/test_faults_*.py), after the last one (run
    with -s to see it). Session-scoped, so the scenarios of every fault module land in the one table."""
    yield
    print("\n| scenario | committed | delivered | delivered twice | lost | note |\n|---|---|---|---|---|---|")
    for row in RESULTS:
        print("| " + " | ".join(map(str, row)) + " |")
