"""PostgreSQL: codes kept as `bit varying`. fh1 codes are XORed and counted by the engine itself; fh2 codes
(compared by Euclidean distance, which the engine cannot take without extensions) carry their public filter
bits (fh2.filter_bits, written at insert): the engine keeps the few rows whose filter is within
fh2.filter_limit of the query's, and those are measured exactly here."""

from __future__ import annotations

from functools import cache

import numpy as np

from edge.core import facehash, fh2
from edge.core.errors import StoreError
from edge.tracer import intake
from edge.tracer.store.counts import stored_count
from edge.tracer.store.protocol import PERSON_COLUMNS, Search, Store
from edge.tracer.store.schema import TABLES
from edge.tracer.store.urls import redacted, scrubbed


class PostgresStore(Store):
    mark = "%s"
    kind = "postgresql"

    def __init__(self, url: str, read_only: bool = False):
        super().__init__()
        try:
            import psycopg
        except ImportError:
            raise StoreError("a PostgreSQL store needs psycopg: pip install 'traceon-edge[postgres]'") from None
        try:
            self.db = psycopg.connect(url)
        except psycopg.Error as e:
            raise StoreError(f"cannot connect to the database {redacted(url)}: {scrubbed(str(e), url)}") from None
        if read_only:  # every transaction of this session is read-only; committed, so no rollback undoes it
            self.db.execute("SET default_transaction_read_only = on")
            self.db.commit()

    def lock_schema(self) -> None:
        self.execute("SELECT pg_advisory_xact_lock(7431027)")  # any fixed number: one lock for our schema

    def tables(self) -> set[str]:
        rows = self.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
        return {name for (name,) in rows}

    def columns(self, table: str) -> set[str]:
        rows = self.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
            "AND table_name = %s",
            (table,),
        )
        return {name for (name,) in rows}

    def json_int(self, column: str, field: str) -> str:
        return f"CAST(CAST({column} AS jsonb) ->> '{field}' AS INTEGER)"

    def tables_sql(self) -> str:
        return (
            TABLES.format(id="BIGSERIAL PRIMARY KEY", code="BIT VARYING", filter=", filter BIT VARYING")
            + ";"
            + ("CREATE INDEX IF NOT EXISTS persons_key_time ON persons (key_id, bits, scheme, started_ms)")
        )

    def add_scheme_columns(self) -> None:
        self.execute("ALTER TABLE persons ADD COLUMN IF NOT EXISTS filter BIT VARYING")
        self.execute("DROP INDEX IF EXISTS persons_key_time")  # made again by create(), with the scheme in it

    def person_columns(self) -> tuple[str, ...]:
        return (*PERSON_COLUMNS, "filter")

    def person_values(self, event: intake.Event) -> list[list]:
        rows = super().person_values(event)
        if event.scheme != fh2.NAME or not rows:
            return [[*row, None] for row in rows]
        filters = fh2.filter_bits(np.frombuffer(b"".join(event.codes), np.uint8), model())
        return [[*row, self.code_param(f.tobytes())] for row, f in zip(rows, filters, strict=True)]

    def code_param(self, code: bytes) -> str:
        return "".join(f"{b:08b}" for b in code)

    def code_mark(self) -> str:
        return "CAST(%s AS BIT VARYING)"

    def code_select(self) -> str:
        return "CAST(p.code AS TEXT)"

    def code_bytes(self, value, bits: int) -> bytes | None:
        if not isinstance(value, str) or len(value) != bits or bits % 8:
            return None
        return int(value, 2).to_bytes(bits // 8, "big")

    def near(
        self,
        scheme: str,
        key_id: str,
        bits: int,
        codes: list[bytes],
        max_distance: int,
        start_ms: int,
        end_ms: int,
        sites: frozenset[str] | None = None,
        *,
        limit_for=None,
    ) -> Search:
        if scheme == fh2.NAME and not self.schemed:  # a store of schema 4 read as it is holds fh1 only
            return Search([], 0, 0)
        window = f"key_id = %s AND bits = %s AND {self.scheme_of()} = %s AND started_ms BETWEEN %s AND %s"
        params: tuple = (key_id, bits, scheme, start_ms, end_ms)
        if sites is not None:
            window += " AND site = ANY(%s)"
            params += (sorted(sites),)
        bad = "code IS NULL OR length(code) <> bits"
        if scheme == fh2.NAME:  # a row without its filter bits cannot be found: unreadable, and counted so
            bad += f" OR filter IS NULL OR length(filter) <> {fh2.BITS}"
        try:
            searched, unreadable = self.execute(
                f"SELECT COUNT(*), COUNT(*) FILTER (WHERE {bad}) FROM persons WHERE {window}",
                params,
            ).fetchone()
            searched -= unreadable
            if limit_for is not None:
                max_distance = min(max_distance, limit_for(searched))
            if max_distance < 0:
                hits = []
            elif scheme == fh2.NAME:
                hits = self.near_fh2(window, params, codes, max_distance)
            else:
                hits = self.near_fh1(window, params, codes, max_distance)
            stored = stored_count(self, "unreadable_rows") or 0
        finally:
            self.db.rollback()  # end the read transaction psycopg opened
        return Search(hits, searched, unreadable + stored)

    def near_fh1(self, window: str, params: tuple, codes: list[bytes], max_distance: int) -> list[tuple[int, int]]:
        distance = "LEAST(" + ", ".join(["bit_count(code # CAST(%s AS BIT VARYING))"] * len(codes)) + ")"
        hits = self.execute(
            f"SELECT id, d FROM (SELECT id, {distance} AS d FROM persons WHERE {window} AND length(code) = bits) "
            "AS s WHERE d <= %s ORDER BY d, id",
            [*map(self.code_param, codes), *params, max_distance],
        ).fetchall()
        return [(int(i), int(d)) for i, d in hits]

    def near_fh2(self, window: str, params: tuple, codes: list[bytes], max_distance: int) -> list[tuple[int, int]]:
        """The engine keeps the rows whose filter bits are within the limit of any query's (a superset of the
        rows within `max_distance`: fh2.filter_limit loses none); their codes are measured exactly here."""
        filters = fh2.filter_bits(np.frombuffer(b"".join(codes), np.uint8), model())
        near_filter = "LEAST(" + ", ".join(["bit_count(filter # CAST(%s AS BIT VARYING))"] * len(codes)) + ")"
        # OFFSET 0 keeps the lengths checked before any XOR (bit strings of unequal length cannot be XORed);
        # only the few candidates' codes are written out as text
        candidates = self.execute(
            f"SELECT id, CAST(code AS TEXT) FROM (SELECT id, code, {near_filter} AS f FROM persons "
            f"WHERE {window} AND length(code) = bits AND length(filter) = {fh2.BITS} OFFSET 0) AS s WHERE f <= %s",
            [*(self.code_param(f.tobytes()) for f in filters), *params, fh2.filter_limit(max_distance, model())],
        ).fetchall()
        if not candidates:
            return []
        ids = np.array([int(i) for i, _ in candidates], np.int64)
        block = np.frombuffer(b"".join(self.code_bytes(c, fh2.BITS) for _, c in candidates), np.uint8)
        distances = fh2.distances(block.reshape(len(ids), -1), codes)
        within = distances <= max_distance
        return sorted(zip(ids[within].tolist(), distances[within].tolist(), strict=True), key=lambda h: (h[1], h[0]))


@cache
def model() -> dict:
    """models/facehash.json: fh2's filter parameters, the same as the units' and every collector's."""
    return facehash.load_scheme()
