"""Where sightings are kept: a SQLite file or a PostgreSQL database, behind one interface.

Each event is one row of `events` (its checked JSON body and what it is searched by), each person in it
one row of `persons` with the FaceHash packed into bits. One search method, `near`, runs where the
data is: PostgreSQL XORs `bit varying` codes and counts bits itself; SQLite hands packed codes to NumPy,
sealed into segments of SEGMENT_ROWS codes so that a million rows are a few blobs, not a million
Python objects. Times are milliseconds since 1970 (UTC) in both.

The parts: protocol.py (the Store base and its values), schema.py (tables, version, upgrades), one
module per engine (sqlite.py, postgres.py), coverage.py (the units' statuses and health, gaps, history),
opening.py (a URL to its engine) and urls.py (redaction).
"""

from edge.core.errors import StoreError
from edge.tracer.store.coverage import Bucket, Checkpoint, Gap, UnitReport
from edge.tracer.store.opening import open_store
from edge.tracer.store.protocol import (
    CONFLICT,
    EVENT_COLUMNS,
    HELD_COLUMNS,
    PERSON_COLUMNS,
    REPEATED,
    STORED,
    Held,
    Row,
    Search,
    Store,
)
from edge.tracer.store.schema import SCHEMA_VERSION
from edge.tracer.store.urls import redacted

SEGMENT_ROWS = 65_536  # codes per sealed SQLite segment; read at each seal, so setting it here takes effect

__all__ = [
    "CONFLICT",
    "EVENT_COLUMNS",
    "HELD_COLUMNS",
    "PERSON_COLUMNS",
    "REPEATED",
    "SCHEMA_VERSION",
    "SEGMENT_ROWS",
    "STORED",
    "Bucket",
    "Checkpoint",
    "Gap",
    "Held",
    "Row",
    "Search",
    "Store",
    "StoreError",
    "UnitReport",
    "open_store",
    "redacted",
]
