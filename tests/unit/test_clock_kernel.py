"""The kernel's word on the clock (adjtimex), asked for real: what the unit reads agrees with the kernel's
own flags, so a clock kept by chrony, ntpd or timesyncd is called synchronised and one nobody keeps is not."""

from __future__ import annotations

import ctypes
import struct
import sys

import pytest

from edge.unit import clock

STA_UNSYNC, STA_CLOCKERR = 0x0040, 0x1000


@pytest.mark.skipif(
    sys.maxsize < 2**32 or sys.platform != "linux", reason="reads struct timex as 64-bit Linux lays it out"
)
def test_the_state_read_agrees_with_the_kernels_unsync_flag():
    state = clock._adjtimex()
    assert state is not None and 0 <= state <= clock.TIME_ERROR
    timex = ctypes.create_string_buffer(512)
    again = clock._libc().adjtimex(timex)
    (status,) = struct.unpack_from("i", timex.raw, 40)  # modes, pad, offset, freq, maxerror, esterror: 40 bytes
    (maxerror,) = struct.unpack_from("l", timex.raw, 24)
    print(f"\nadjtimex: {again} (TIME_ERROR is {clock.TIME_ERROR}), status {status:#06x}, maxerror {maxerror} µs")
    assert again == state
    assert (again == clock.TIME_ERROR) == bool(status & (STA_UNSYNC | STA_CLOCKERR))


def test_without_timesyncd_the_kernel_answers(monkeypatch, tmp_path):
    monkeypatch.setattr(clock, "TIMESYNCD_FLAG", tmp_path / "no-such-flag")
    synchronized, via = clock._ask()
    assert via == "kernel" and synchronized is (clock._adjtimex() != clock.TIME_ERROR)
