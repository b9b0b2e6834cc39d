"""The unit's clock: event times, and whether the system clock can be trusted for them.

A Raspberry Pi has no battery-backed clock: after a power cut it boots with the time fake-hwclock saved,
hours or days behind, until NTP synchronises it. So a unit asks whether the clock is synchronised (the
answer goes into every event and into health), times each burst with one reading of the wall clock plus
the monotonic clock (a step of the system clock mid-burst cannot turn an event around), and keeps the
monotonic time of events made while unsynchronised, so that they can be re-stamped once it is.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import subprocess
import threading
import time
from pathlib import Path

TIMESYNCD_FLAG = Path("/run/systemd/timesync/synchronized")  # systemd-timesyncd touches it on each sync
TIME_ERROR = 5  # adjtimex's answer when the kernel clock is not synchronised
CHECK_EVERY_S = 5.0


def boot_id() -> str:
    """This boot's id: monotonic times compare only within one boot."""
    with contextlib.suppress(OSError):
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    return "unknown"


class SystemClock:
    """time.time() and time.monotonic(), and the system's own word on synchronisation (cached for a few s)."""

    def __init__(self):
        self.boot = boot_id()
        self._lock = threading.Lock()
        self._checked_at = -1e9
        self._answer: tuple[bool | None, str] = (None, "none")

    def wall(self) -> float:
        return time.time()

    def mono(self) -> float:
        return time.monotonic()

    def synchronized(self) -> bool | None:
        """True or False, or None when nothing on this system can tell."""
        return self.state()[0]

    def state(self) -> tuple[bool | None, str]:
        """(synchronised?, how it is known)."""
        with self._lock:
            if time.monotonic() - self._checked_at >= CHECK_EVERY_S:
                self._answer, self._checked_at = _ask(), time.monotonic()
            return self._answer


def _ask() -> tuple[bool | None, str]:
    if TIMESYNCD_FLAG.exists():
        return True, "timesyncd"
    state = _adjtimex()
    if state is not None:
        return state != TIME_ERROR, "kernel"
    with contextlib.suppress(OSError, subprocess.SubprocessError):  # a sandbox that forbids adjtimex (ProtectClock)
        said = subprocess.run(
            ["timedatectl", "show", "-p", "NTPSynchronized", "--value"], capture_output=True, text=True, timeout=2
        )
        if said.returncode == 0 and said.stdout.strip() in ("yes", "no"):
            return said.stdout.strip() == "yes", "timedated"
    return None, "none"


def _adjtimex() -> int | None:
    """The kernel's clock state (adjtimex with no changes), or None if it cannot be asked."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        timex = ctypes.create_string_buffer(512)  # struct timex and its padding, modes = 0: only read
        state = libc.adjtimex(timex)
        return state if state >= 0 else None
    return None


def mark(synchronized: bool | None) -> str:
    """What an event says of its times."""
    return {True: "synchronized", False: "unsynchronized", None: "unknown"}[synchronized]
