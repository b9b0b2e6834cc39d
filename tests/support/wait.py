"""The one way a test waits for something to happen: poll it, with a deadline, and say what never came."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class WaitTimeout(AssertionError):
    """What a test waited for did not happen in time."""


def wait_until(condition: Callable[[], T], timeout: float, what: str | Callable[[], str], interval: float = 0.05) -> T:
    """Call `condition` every `interval` seconds until it returns something truthy, and return that. If
    `timeout` seconds pass first, fail with "waited <timeout> s for <what>". `what` names the awaited thing
    ("the unit's first health report"); it may be a function, called only then, to add the state the wait
    ended in. The condition is tried once more at the deadline, so a slow poll never fails a wait it met."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise WaitTimeout(f"waited {timeout:g} s for {what() if callable(what) else what}")
        time.sleep(interval)  # the poll interval of this one wait loop
