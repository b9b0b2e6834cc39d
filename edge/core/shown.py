"""Text from the broker, a unit's files or a sender, made safe to print on a terminal or in a log line."""

from __future__ import annotations


def shown(value: object, limit: int = 60) -> str:
    """`value` as text with every control character (C0, DEL, C1, and the invisible format ones such as
    a right-to-left override) written as an escape, and cut at `limit` characters: a hostile string
    cannot move the cursor, retitle the window or fake a line, nor flood the screen."""
    text = value if isinstance(value, str) else str(value)
    cut = len(text) > limit
    text = text[:limit]
    if not text.isprintable():
        text = "".join(
            c if c.isprintable() else f"\\x{ord(c):02x}" if ord(c) < 256 else f"\\u{ord(c):04x}" for c in text
        )
    return text + "…" if cut else text
