"""What the daemon tells systemd (the unit is Type=notify with WatchdogSec=): READY=1, RELOADING=1, STOPPING=1,
STATUS= and the watchdog's WATCHDOG=1, each a datagram to $NOTIFY_SOCKET. The daemon feeds the watchdog only
while every one of its threads is alive, so that systemd restarts a unit that has stopped working."""

from __future__ import annotations

import contextlib
import os
import socket


def sd_notify(message: str) -> None:
    """A datagram to systemd's $NOTIFY_SOCKET (no-op when not run by systemd)."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.sendto(message.encode(), address)
