"""A store from its URL: the engine the URL names, its tables created, checked or upgraded; or, for a
reader (`trace`), opened read-only and only checked, so that reading never writes."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from edge.core.errors import StoreError
from edge.tracer.store import schema
from edge.tracer.store.postgres import PostgresStore
from edge.tracer.store.protocol import Store
from edge.tracer.store.sqlite import SqliteStore
from edge.tracer.store.urls import redacted


def open_store(url: str, upgrade: bool = False, create: bool = True, read_only: bool = False) -> Store:
    """A store at `url` (a file path, sqlite:///path or postgresql://…). An older format is upgraded only
    if `upgrade`; otherwise it is refused with the command that upgrades it. A SQLite file that is not
    there is made only if `create` (a reader should not leave an empty database behind a typo). With
    `read_only` nothing is created or written: SQLite opens the file read-only, PostgreSQL runs a
    read-only session."""
    store: Store
    if url.startswith(("postgresql://", "postgres://")):
        store = PostgresStore(url, read_only=read_only)
    else:
        path = url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else url
        if "://" in path:
            raise StoreError(
                f"unsupported database URL {redacted(url)!r}: use a file path, sqlite:///path or postgresql://"
            )
        if (read_only or not create) and not Path(path).is_file():
            raise StoreError(f"there is no sightings database at {path} (a collector makes it: traceon-edge collect)")
        store = SqliteStore(Path(path), read_only=read_only)
    try:
        if read_only:
            check(store, url)
        else:
            schema.prepare(store, url, upgrade)
    except sqlite3.DatabaseError as e:  # e.g. "file is not a database"
        store.close()
        raise StoreError(f"cannot read {redacted(url)} as a sightings database: {e}") from None
    except BaseException:
        store.close()
        raise
    return store


def check(store: Store, url: str) -> None:
    """What prepare() checks, without creating anything: a store with no tables of ours is refused."""
    tables = store.tables()
    if "meta" not in tables and "sightings" not in tables:
        raise StoreError(
            f"{redacted(url)} holds no sightings (an empty file, or another program's database); "
            "a collector makes the database: traceon-edge collect"
        )
    if "meta" in tables and not (store.meta("schema_version") or "").isdigit():
        raise StoreError(f"{redacted(url)} holds no readable schema version: it is not a sightings database")
    schema.prepare(store, url, upgrade=False)  # a known version: it only checks
