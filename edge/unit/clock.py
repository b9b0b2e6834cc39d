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
import functools
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


@functools.cache
def _libc() -> ctypes.CDLL:
    """Loaded once: find_library runs ldconfig (a process) each time it is asked."""
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _adjtimex() -> int | None:
    """The kernel's clock state (adjtimex with no changes), or None if it cannot be asked.

    The return value, not the struct's `status`, is read: it is the kernel's own summary (TIME_ERROR when
    STA_UNSYNC or STA_CLOCKERR is set, which any NTP client, chrony, ntpd or timesyncd, clears once
    synchronised; and which the kernel sets again when no one has vouched for the clock for long enough
    for maxerror to pass 16 s), and it needs no knowledge of struct timex's layout, which differs between
    64-bit, 32-bit and 32-bit with a 64-bit time_t. The buffer is larger than any of them and zeroed:
    modes = 0, nothing is changed (reading needs no privilege)."""
    with contextlib.suppress(OSError, AttributeError):
        timex = ctypes.create_string_buffer(512)
        state = _libc().adjtimex(timex)
        return state if state >= 0 else None
    return None


def mark(synchronized: bool | None) -> str:
    """What an event says of its times."""
    return {True: "synchronized", False: "unsynchronized", None: "unknown"}[synchronized]
