"""The tables every engine creates (in its own column types), the schema version, and the way up from older
ones: what opening a store checks before any reading or writing."""

from __future__ import annotations

import json

from edge.core.errors import StoreError
from edge.tracer import intake
from edge.tracer.store.protocol import HELD_COLUMNS, Store, now_ms
from edge.tracer.store.urls import redacted

SCHEMA_VERSION = 3  # 3: the `held` table, events set aside by the per-unit limits

TABLES = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
  event_id TEXT PRIMARY KEY, site TEXT NOT NULL, checkpoint TEXT NOT NULL, device TEXT NOT NULL,
  started_ms BIGINT NOT NULL, ended_ms BIGINT NOT NULL, key_id TEXT NOT NULL, received_ms BIGINT NOT NULL,
  body TEXT NOT NULL, clock TEXT);
CREATE INDEX IF NOT EXISTS events_time ON events (started_ms);
CREATE TABLE IF NOT EXISTS persons (
  id {id}, event_id TEXT NOT NULL REFERENCES events (event_id) ON DELETE CASCADE, position INTEGER NOT NULL,
  site TEXT NOT NULL, checkpoint TEXT NOT NULL, started_ms BIGINT NOT NULL, ended_ms BIGINT NOT NULL,
  key_id TEXT NOT NULL, bits INTEGER NOT NULL, code {code}, UNIQUE (event_id, position));
CREATE INDEX IF NOT EXISTS persons_place_time ON persons (site, checkpoint, started_ms);
CREATE INDEX IF NOT EXISTS persons_time ON persons (started_ms);
CREATE TABLE IF NOT EXISTS held (
  id {id}, site TEXT NOT NULL, checkpoint TEXT NOT NULL, device TEXT NOT NULL, topic TEXT NOT NULL,
  received_ms BIGINT NOT NULL, started_ms BIGINT, persons INTEGER NOT NULL, kind TEXT NOT NULL, reason TEXT NOT NULL,
  payload TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS held_unit ON held (site, checkpoint, device)
"""


def prepare(store: Store, url: str, upgrade: bool) -> None:
    """Create the tables of a new store, refuse one too old (unless `upgrade`) or too new."""
    with store.transaction():
        store.lock_schema()
        version = version_of(store)
        if version is None:
            create(store)
        elif version == 1:
            if not upgrade:
                raise StoreError(
                    f"{redacted(url)} holds sightings in the format of an older traceon-edge (schema 1); "
                    f"upgrade it once with `traceon-edge upgrade-db --db {redacted(url)}` "
                    "(a collector does it by itself when it starts)"
                )
            upgrade_from_1(store)
        elif version == 2 and upgrade:  # schema 2 reads as 3 (it only lacks `held`): a trace need not upgrade
            upgrade_from_2(store)
        elif version > SCHEMA_VERSION:
            raise StoreError(
                f"{redacted(url)} was written by a newer traceon-edge (schema {version}, this one reads "
                f"{SCHEMA_VERSION}); upgrade traceon-edge"
            )


def version_of(store: Store) -> int | None:
    tables = store.tables()
    if "meta" in tables:
        return int(store.meta("schema_version", "0"))
    return 1 if "sightings" in tables else None


def create(store: Store) -> None:
    for statement in filter(str.strip, store.tables_sql().split(";")):
        store.execute(statement)
    store.set_meta("schema_version", str(SCHEMA_VERSION))


def upgrade_from_1(store: Store) -> None:
    """Schema 1 kept FaceHash text; each old event is checked as a new one would be. Those that fail are
    skipped and counted (the trace header reports them)."""
    store.execute("ALTER TABLE persons RENAME TO persons_v1")
    store.execute("ALTER TABLE sightings RENAME TO sightings_v1")
    for index in ("sightings_place_time",):
        store.execute(f"DROP INDEX IF EXISTS {index}")
    create(store)
    skipped = 0
    for (body,) in store.execute("SELECT body FROM sightings_v1").fetchall():
        try:
            store.insert(check_stored(json.loads(body)), received_ms=now_ms())
        except (ValueError, TypeError, KeyError, RecursionError):
            skipped += 1
    store.set_meta("unreadable_rows", str(skipped))
    store.execute("DROP TABLE persons_v1")
    store.execute("DROP TABLE sightings_v1")


def upgrade_from_2(store: Store) -> None:
    """Schema 3 adds `held`; events stored before time sanity that start more than a day after they were
    received are moved there, so that retention and the trace header's coverage see only real times."""
    create(store)
    future = store.execute(
        "SELECT event_id, site, checkpoint, device, received_ms, started_ms, body FROM events "
        "WHERE started_ms > received_ms + ?",
        (intake.MAX_AHEAD_MS,),
    ).fetchall()
    for event_id, site, checkpoint, device, received_ms, started_ms, body in future:
        persons = store.execute("SELECT COUNT(*) FROM persons WHERE event_id = ?", (event_id,)).fetchone()[0]
        store.execute(
            f"INSERT INTO held ({', '.join(HELD_COLUMNS)}) VALUES ({', '.join('?' * len(HELD_COLUMNS))})",
            (
                site,
                checkpoint,
                device,
                f"(stored before schema 3)/{site}/{checkpoint}/{device}/events",
                received_ms,
                started_ms,
                persons,
                "time",
                "time: starts more than a day after it was received",
                body,
            ),
        )
        store.execute("DELETE FROM persons WHERE event_id = ?", (event_id,))
        store.execute("DELETE FROM events WHERE event_id = ?", (event_id,))


def check_stored(body: dict) -> intake.Event:
    """An event read back from a store: checked as the collector checks a new one (its topic aside)."""
    if not isinstance(body, dict):
        raise intake.Refused("not a JSON object")
    intake.check_schema(body)
    return intake.build(body)
