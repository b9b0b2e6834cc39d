"""Time spans as people write them (`30m`, `14d`) and times as reports show them: one home for both."""

from __future__ import annotations

import datetime
import re

from edge.core.errors import SpanError

SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MS = datetime.timedelta(milliseconds=1)
MOST = datetime.timedelta(days=3650)  # ten years: more than any tracing window or retention, and far from overflow
_SPAN = re.compile(r"(\d+\.?\d*|\.\d+)([smhd])", re.ASCII)  # ASCII: str.isdigit() also took "²" and "٣"


def parse_span(text: str, most: datetime.timedelta = MOST) -> datetime.timedelta:
    """A span such as `30m`, `1.5h` or `14d`, at most `most`; SpanError says what is wrong with any other text."""
    match = _SPAN.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise SpanError(f"{_shown(text)} is not a duration: use a number and s, m, h or d (e.g. 30m, 14d)")
    seconds = float(match[1]) * SECONDS[match[2]]  # a long run of digits is inf, which the bound refuses
    if not seconds <= most.total_seconds():
        raise SpanError(f"{_shown(text)} is longer than {span(most // MS)}, the longest span allowed here")
    return datetime.timedelta(seconds=seconds)


def _shown(text) -> str:
    return repr(text) if not isinstance(text, str) or len(text) <= 24 else f"{text[:20]!r}…"


def span(ms: int) -> str:
    """A span in the largest unit that says it exactly, as parse_span reads it: `30m`, `14d`, `90s`, `1.5s`."""
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms >= size and ms % size == 0:
            return f"{int(ms // size)}{unit}"  # not `:g`, which writes 1234567 as 1.23457e+06
    return f"{f'{ms / 1000:.3f}'.rstrip('0').rstrip('.') or 0}s"


def when(ms: int | None, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    """A moment in milliseconds since the epoch, in UTC; `-` for none."""
    if ms is None:
        return "-"
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC).strftime(fmt)
