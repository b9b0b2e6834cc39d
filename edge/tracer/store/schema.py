"""The tables every engine creates (in its own column types), the schema version, and the way up from older
ones: what opening a store checks before any reading or writing."""

from __future__ import annotations

import json

from edge.core.errors import StoreError
from edge.tracer import intake
from edge.tracer.store.protocol import HELD_COLUMNS, Store, now_ms
from edge.tracer.store.urls import redacted

SCHEMA_VERSION = 5  # 3: the `held` table (per-unit limits); 4: coverage (statuses, health); 5: FaceHash schemes

TABLES = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
  event_id TEXT PRIMARY KEY, site TEXT NOT NULL, checkpoint TEXT NOT NULL, device TEXT NOT NULL,
  started_ms BIGINT NOT NULL, ended_ms BIGINT NOT NULL, key_id TEXT NOT NULL, received_ms BIGINT NOT NULL,
  body TEXT NOT NULL, clock TEXT, faces INTEGER);
CREATE INDEX IF NOT EXISTS events_time ON events (started_ms);
CREATE INDEX IF NOT EXISTS events_place_time ON events (site, checkpoint, started_ms, device, faces, clock);
CREATE TABLE IF NOT EXISTS persons (
  id {id}, event_id TEXT NOT NULL REFERENCES events (event_id) ON DELETE CASCADE, position INTEGER NOT NULL,
  site TEXT NOT NULL, checkpoint TEXT NOT NULL, started_ms BIGINT NOT NULL, ended_ms BIGINT NOT NULL,
  key_id TEXT NOT NULL, bits INTEGER NOT NULL, code {code}, scheme TEXT NOT NULL DEFAULT 'fh1'{filter},
  UNIQUE (event_id, position));
CREATE INDEX IF NOT EXISTS persons_place_time ON persons (site, checkpoint, started_ms);
CREATE INDEX IF NOT EXISTS persons_time ON persons (started_ms);
CREATE TABLE IF NOT EXISTS held (
  id {id}, site TEXT NOT NULL, checkpoint TEXT NOT NULL, device TEXT NOT NULL, topic TEXT NOT NULL,
  received_ms BIGINT NOT NULL, started_ms BIGINT, persons INTEGER NOT NULL, kind TEXT NOT NULL, reason TEXT NOT NULL,
  payload TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS held_unit ON held (site, checkpoint, device);
CREATE TABLE IF NOT EXISTS statuses (
  id {id}, site TEXT NOT NULL, checkpoint TEXT NOT NULL, device TEXT NOT NULL, at_ms BIGINT NOT NULL,
  state TEXT NOT NULL, received_ms BIGINT NOT NULL);
CREATE INDEX IF NOT EXISTS statuses_unit_time ON statuses (site, checkpoint, device, at_ms);
CREATE INDEX IF NOT EXISTS statuses_time ON statuses (at_ms);
CREATE TABLE IF NOT EXISTS health (
  id {id}, site TEXT NOT NULL, checkpoint TEXT NOT NULL, device TEXT NOT NULL, at_ms BIGINT NOT NULL,
  camera TEXT NOT NULL, clock TEXT NOT NULL, received_ms BIGINT NOT NULL);
CREATE INDEX IF NOT EXISTS health_unit_time ON health (site, checkpoint, device, at_ms);
CREATE INDEX IF NOT EXISTS health_time ON health (at_ms)
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
        elif version in (2, 3, 4) and upgrade:  # read as they are: they lack what a trace can do without
            {2: upgrade_from_2, 3: upgrade_from_3, 4: upgrade_from_4}[version](store)
        elif version > SCHEMA_VERSION:
            raise StoreError(
                f"{redacted(url)} was written by a newer traceon-edge (schema {version}, this one reads "
                f"{SCHEMA_VERSION}); upgrade traceon-edge"
            )
        # a store of schema 4 or older read as it is holds fh1 rows only, and no column that says so
        store.schemed = "persons" not in store.tables() or "scheme" in store.columns("persons")


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
    """Schema 3 adds `held` (made here with schema 4's tables); events stored before time sanity that start
    more than a day after they were received are moved there, so that retention and coverage see real times."""
    upgrade_from_3(store)
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


def upgrade_from_3(store: Store) -> None:
    """Schema 4 adds the units' statuses and health reports (coverage), and each event's count of faces as
    a column (read from its stored body), so that a checkpoint's history is counted from an index."""
    if "faces" not in store.columns("events"):
        store.execute("ALTER TABLE events ADD COLUMN faces INTEGER")
        store.execute(f"UPDATE events SET faces = {store.json_int('body', 'faces')}")
    upgrade_from_4(store)


def upgrade_from_4(store: Store) -> None:
    """Schema 5 names each row's FaceHash scheme (every older row is fh1) and searches by it: the column
    (PostgreSQL also fh2's filter bits, SQLite each segment's scheme), and the search indexes made again
    with the scheme in them."""
    if "scheme" not in store.columns("persons"):
        store.execute("ALTER TABLE persons ADD COLUMN scheme TEXT NOT NULL DEFAULT 'fh1'")
    store.add_scheme_columns()
    create(store)


def check_stored(body: dict) -> intake.Event:
    """An event read back from a store: checked as the collector checks a new one (its topic aside)."""
    if not isinstance(body, dict):
        raise intake.Refused("not a JSON object")
    intake.check_schema(body)
    return intake.build(body)
