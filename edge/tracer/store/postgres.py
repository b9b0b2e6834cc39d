"""PostgreSQL: codes kept as `bit varying`, XORed and counted by the engine itself."""

from __future__ import annotations

from edge.core.errors import StoreError
from edge.tracer.store.counts import stored_count
from edge.tracer.store.protocol import Search, Store
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
            TABLES.format(id="BIGSERIAL PRIMARY KEY", code="BIT VARYING")
            + ";"
            + ("CREATE INDEX IF NOT EXISTS persons_key_time ON persons (key_id, bits, started_ms)")
        )

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
        key_id: str,
        bits: int,
        codes: list[bytes],
        max_distance: int,
        start_ms: int,
        end_ms: int,
        sites: frozenset[str] | None = None,
    ) -> Search:
        window = "key_id = %s AND bits = %s AND started_ms BETWEEN %s AND %s"
        params: tuple = (key_id, bits, start_ms, end_ms)
        if sites is not None:
            window += " AND site = ANY(%s)"
            params += (sorted(sites),)
        bad = "code IS NULL OR length(code) <> bits"
        searched, unreadable = self.execute(
            f"SELECT COUNT(*), COUNT(*) FILTER (WHERE {bad}) FROM persons WHERE {window}",
            params,
        ).fetchone()
        distance = "LEAST(" + ", ".join(["bit_count(code # CAST(%s AS BIT VARYING))"] * len(codes)) + ")"
        try:
            hits = self.execute(
                f"SELECT id, d FROM (SELECT id, {distance} AS d FROM persons WHERE {window} AND length(code) = bits) "
                "AS s WHERE d <= %s ORDER BY d, id",
                [*map(self.code_param, codes), *params, max_distance],
            ).fetchall()
            stored = stored_count(self, "unreadable_rows") or 0
        finally:
            self.db.rollback()  # end the read transaction psycopg opened
        return Search([(int(i), int(d)) for i, d in hits], searched - unreadable, unreadable + stored)
