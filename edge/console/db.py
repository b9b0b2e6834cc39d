"""The console's own tables, in the same database as the tracer's store (a SQLite file or PostgreSQL).

One connection per ConsoleDb, guarded by a lock: the web app serves requests on threads, and a transaction
must not interleave with another's statements. Every change runs in `db.transaction()`, so an action and
its audit row commit together or not at all. SQL is written with `?` marks; for psycopg they become `%s`.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from edge.core.errors import ConsoleDbError
from edge.tracer.store import redacted
from edge.tracer.store.urls import scrubbed

SCHEMA_VERSION = 1
VERSION_KEY = "console_schema_version"
BUSY_MS = 10_000  # how long SQLite waits for the collector's write lock before giving up

# {id}: the engine's auto-numbered key. `audit` is append-only: the console's PostgreSQL role may only
# SELECT and INSERT it (config/console-grants.sql); on SQLite the triggers below stop a careless UPDATE.
TABLES = """
CREATE TABLE IF NOT EXISTS console_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS console_users (
    name TEXT PRIMARY KEY, role TEXT NOT NULL, sites TEXT, password_hash TEXT NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0, created_ms BIGINT NOT NULL, changed_ms BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS console_sessions (
    token_hash TEXT PRIMARY KEY, user_name TEXT NOT NULL, csrf TEXT NOT NULL, address TEXT NOT NULL,
    created_ms BIGINT NOT NULL, seen_ms BIGINT NOT NULL);
CREATE INDEX IF NOT EXISTS console_sessions_user ON console_sessions (user_name);
CREATE TABLE IF NOT EXISTS console_throttle (
    subject TEXT PRIMARY KEY, failures INTEGER NOT NULL, last_ms BIGINT NOT NULL,
    locked_until_ms BIGINT NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS audit (
    seq BIGINT PRIMARY KEY, at_ms BIGINT NOT NULL, "user" TEXT NOT NULL, action TEXT NOT NULL,
    address TEXT NOT NULL, detail TEXT NOT NULL, mac TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS audit_at ON audit (at_ms);
CREATE TABLE IF NOT EXISTS notices (
    id {id}, site TEXT NOT NULL, checkpoint TEXT NOT NULL, from_ms BIGINT NOT NULL, to_ms BIGINT NOT NULL,
    published_ms BIGINT NOT NULL, withdrawn_ms BIGINT)
"""

SQLITE_GUARDS = """
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END
"""


class Tx:
    """One transaction: statements with `?` marks, and work to do once it has committed."""

    def __init__(self, cursor, postgres: bool, audit_key):
        self._cursor, self._postgres, self.audit_key = cursor, postgres, audit_key
        self._after: list[Callable[[], None]] = []
        self.kind = "postgresql" if postgres else "sqlite"

    def _sql(self, sql: str) -> str:
        return sql.replace("%", "%%").replace("?", "%s") if self._postgres else sql

    def execute(self, sql: str, params: tuple | list = ()) -> int:
        """Run one statement; the number of rows it changed."""
        self._run(sql, params)
        return self._cursor.rowcount

    def query(self, sql: str, params: tuple | list = ()) -> list[tuple]:
        self._run(sql, params)
        return [tuple(row) for row in self._cursor.fetchall()]

    def _run(self, sql: str, params: tuple | list) -> None:
        try:
            self._cursor.execute(self._sql(sql), tuple(params))
        except Exception as e:  # sqlite3.Error or psycopg.Error: a down server, a missing right, a full disk
            if not _is_driver_error(e):
                raise
            raise ConsoleDbError(f"the database refused a statement: {_first_line(e)}") from None

    def after_commit(self, work: Callable[[], None]) -> None:
        """Run `work` once this transaction has committed (never if it rolls back): e.g. journal the audit head."""
        self._after.append(work)


class ConsoleDb:
    """The console's tables on one connection. `open` makes them if missing; `close` is idempotent."""

    def __init__(self, connection, postgres: bool, url: str):
        self._db, self.postgres, self._url = connection, postgres, url
        self.audit_key = None
        self.kind = "postgresql" if postgres else "sqlite"
        self._lock = threading.RLock()
        self._closed = False

    @classmethod
    def open(cls, url: str, audit_key=None) -> ConsoleDb:
        """The console's tables at `url` (a file path, sqlite:///path or postgresql://…), made if missing.
        `audit_key`: what logins and account changes in this database's transactions are audited with."""
        db = cls._connect(url)
        db.audit_key = audit_key
        try:
            db._prepare()
        except BaseException:
            db.close()
            raise
        return db

    @classmethod
    def _connect(cls, url: str) -> ConsoleDb:
        if url.startswith(("postgresql://", "postgres://")):
            try:
                import psycopg
            except ImportError:
                raise ConsoleDbError("PostgreSQL needs psycopg: pip install 'traceon-edge[postgres]'") from None
            try:
                connection = psycopg.connect(url, autocommit=True)  # transactions are opened explicitly
            except psycopg.Error as e:
                why = scrubbed(_first_line(e), url)
                raise ConsoleDbError(f"cannot connect to the database {redacted(url)}: {why}") from None
            return cls(connection, True, url)
        path = url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else url
        if "://" in path:
            raise ConsoleDbError(
                f"unsupported database URL {redacted(url)!r}: use a file path, sqlite:///path or postgresql://"
            )
        try:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: no implicit transactions; `transaction()` says BEGIN IMMEDIATE itself
            connection = sqlite3.connect(path, timeout=BUSY_MS / 1000, isolation_level=None, check_same_thread=False)
            connection.execute(f"PRAGMA busy_timeout = {BUSY_MS}")
            connection.execute("PRAGMA journal_mode = WAL")
            connection.execute("PRAGMA synchronous = FULL")  # an audit row that was acknowledged survives a power cut
        except (sqlite3.Error, OSError) as e:
            raise ConsoleDbError(f"cannot open the database {path}: {e}") from None
        return cls(connection, False, url)

    def _prepare(self) -> None:
        """Create the tables if the version key is not there yet. A database already prepared is only read:
        the console's PostgreSQL role has no right to CREATE, and needs none."""
        with self.transaction() as tx:
            if self.postgres:
                tx.execute("SELECT pg_advisory_xact_lock(7431028)")  # two consoles starting at once: one creates
            if self._version(tx) is None:
                script = TABLES.format(id="BIGSERIAL PRIMARY KEY" if self.postgres else "INTEGER PRIMARY KEY")
                if not self.postgres:
                    script += ";" + SQLITE_GUARDS
                for statement in _statements(script):
                    tx.execute(statement)
                tx.execute("INSERT INTO console_meta (key, value) VALUES (?, ?)", (VERSION_KEY, str(SCHEMA_VERSION)))
                return
        version = self._version_now()
        if version != str(SCHEMA_VERSION):
            raise ConsoleDbError(
                f"{redacted(self._url)} holds console tables of version {version}, which this traceon-edge "
                f"(version {SCHEMA_VERSION}) cannot use"
            )

    def _version(self, tx: Tx) -> str | None:
        has_meta = tx.query(
            "SELECT 1 FROM pg_tables WHERE schemaname = current_schema() AND tablename = 'console_meta'"
            if self.postgres
            else "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'console_meta'"
        )
        if not has_meta:
            return None
        rows = tx.query("SELECT value FROM console_meta WHERE key = ?", (VERSION_KEY,))
        return rows[0][0] if rows else None

    def _version_now(self) -> str | None:
        with self.transaction() as tx:
            return self._version(tx)

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        """A transaction: committed if the block ends, rolled back if it raises. Writers take the lock at
        BEGIN (SQLite's IMMEDIATE), so two writers wait for each other rather than fail on upgrade."""
        with self._lock:
            if self._closed:
                raise ConsoleDbError("the console's database is closed")
            tx = self._begin()
            try:
                yield tx
            except BaseException:
                self._end("ROLLBACK")
                raise
            self._end("COMMIT")
        for work in tx._after:
            work()

    def _begin(self) -> Tx:
        if self.postgres and self._db.closed:  # the server restarted since: connect again rather than fail forever
            self._db = type(self)._connect(self._url)._db
        try:
            cursor = self._db.cursor()
            cursor.execute("BEGIN" if self.postgres else "BEGIN IMMEDIATE")
        except Exception as e:
            if not _is_driver_error(e):
                raise
            raise self._error(e) from None
        return Tx(cursor, self.postgres, self.audit_key)

    def _end(self, how: str) -> None:
        try:
            self._db.execute(how)
        except Exception as e:
            if how == "COMMIT" and _is_driver_error(e):
                raise self._error(e) from None
            # a failed ROLLBACK (the connection is gone) must not hide the error that caused it

    def _error(self, e: Exception) -> ConsoleDbError:
        return ConsoleDbError(f"the database {redacted(self._url)} cannot be used: {_first_line(e)}")

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._db.close()


def _statements(script: str) -> list[str]:
    """The statements of a script; a trigger's body (BEGIN … END) holds `;` of its own, so it is kept whole."""
    out, pending = [], ""
    for part in script.split(";"):
        pending += part
        if pending.strip().upper().startswith("CREATE TRIGGER") and not pending.strip().upper().endswith("END"):
            pending += ";"
            continue
        if pending.strip():
            out.append(pending.strip())
        pending = ""
    return out


def _is_driver_error(e: Exception) -> bool:
    return isinstance(e, sqlite3.Error) or type(e).__module__.startswith("psycopg")


def _first_line(e: Exception) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]
