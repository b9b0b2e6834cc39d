"""A store from its URL: the engine the URL names, its tables created, checked or upgraded."""

from __future__ import annotations

from pathlib import Path

from edge.core.errors import StoreError
from edge.tracer.store import schema
from edge.tracer.store.postgres import PostgresStore
from edge.tracer.store.protocol import Store
from edge.tracer.store.sqlite import SqliteStore


def open_store(url: str, upgrade: bool = False, create: bool = True) -> Store:
    """A store at `url` (a file path, sqlite:///path or postgresql://…). An older format is upgraded only
    if `upgrade`; otherwise it is refused with the command that upgrades it. A SQLite file that is not
    there is made only if `create` (a reader should not leave an empty database behind a typo)."""
    store: Store
    if url.startswith(("postgresql://", "postgres://")):
        store = PostgresStore(url)
    else:
        path = url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else url
        if "://" in path:
            raise StoreError(f"unsupported database URL {url!r}: use a file path, sqlite:///path or postgresql://")
        if not create and not Path(path).is_file():
            raise StoreError(f"there is no sightings database at {path} (a collector makes it: traceon-edge collect)")
        store = SqliteStore(Path(path))
    try:
        schema.prepare(store, url, upgrade)
    except BaseException:
        store.close()
        raise
    return store
