"""Numbers kept in a store's `meta` table, read so that a damaged value is unknown, not a crash."""

from __future__ import annotations

from edge.tracer.store.protocol import Store


def stored_count(store: Store, name: str) -> int | None:
    """The count under `name`: 0 when it was never written, None when what is there is not a count."""
    value = store.meta(name, "0")
    return int(value) if isinstance(value, str) and value.isascii() and value.isdigit() else None
