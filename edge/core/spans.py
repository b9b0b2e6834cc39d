"""Time spans as people write them (`30m`, `14d`) and times as reports show them: one home for both."""

from __future__ import annotations

import datetime

from edge.core.errors import SpanError

UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_span(text: str) -> datetime.timedelta:
    if len(text) < 2 or text[-1] not in UNITS or not text[:-1].replace(".", "", 1).isdigit():
        raise SpanError(f"{text!r} is not a duration: use a number and s, m, h or d (e.g. 30m, 14d)")
    return datetime.timedelta(**{UNITS[text[-1]]: float(text[:-1])})


def span(ms: int) -> str:
    """A span in the largest unit that says it exactly: `30m`, `14d`, `90s`."""
    seconds = ms / 1000
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def when(ms: int | None, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    """A moment in milliseconds since the epoch, in UTC; `-` for none."""
    if ms is None:
        return "-"
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC).strftime(fmt)
