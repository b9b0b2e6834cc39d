"""What the pages share: the settings, the databases, the audit key, and the traces kept for a while.

The console's own tables (users, sessions, audit, notices) and the collector's sightings live in one
database. The console's tables are reached through one ConsoleDb, which serialises the threads Starlette runs
blocking pages on; it is opened at the first page that needs it, so a database that is down at start is a
page that says so, not a console that will not start. The tracer's store is opened read-only for each page that
reads it, so a page never holds the collector's file open, and a database that went away is found at once.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from edge.console.csrf import Signer
from edge.console.views.results import Results
from edge.core.broker import BrokerConfig
from edge.core.errors import ConsoleDbError, StoreError, TraceonError


@dataclass(frozen=True)
class ConsoleSettings:
    db_url: str  # the collector's database: its sightings, and the console's own tables beside them
    audit_key: Path  # the audit chain's MAC key: a 0600 file, never in the database
    key_files: tuple[Path, ...] = ()  # the deployment's FaceHash key(s), to hash uploaded photos in memory
    key_chains: tuple[Path, ...] = ()  # the tracer's key chain(s): every epoch of a trace's window it still holds
    broker: BrokerConfig | None = None  # where notices are published (retained); None: on /notices only
    prefix: str = "traceon"
    secure_cookies: bool = False  # served over TLS, directly or behind a proxy that terminates it
    results_per_session: int = 5
    results_ttl_s: int = 3600


class DatabaseDown(TraceonError):
    """The database cannot be opened or queried: a page says so and that nothing was done."""


@dataclass
class Console:
    settings: ConsoleSettings
    signer: Signer = field(default_factory=Signer)
    results: Results = field(init=False)
    _opening: threading.Lock = field(default_factory=threading.Lock)
    _db: object = None
    _audit_key: object = None
    _keys: list | None = None
    _publisher: object = None

    def __post_init__(self) -> None:
        self.results = Results(self.settings.results_per_session, self.settings.results_ttl_s)

    def db(self):
        """The console's tables (one connection, which ConsoleDb serialises; logins are audited with our key)."""
        from edge.console.db import ConsoleDb

        with self._opening:
            if self._db is None:
                try:
                    self._db = ConsoleDb.open(self.settings.db_url, audit_key=self.audit_key())
                except ConsoleDbError as e:
                    raise DatabaseDown(str(e)) from None
            return self._db

    @contextlib.contextmanager
    def store(self) -> Iterator:
        from edge.tracer import store

        try:
            opened = store.open_store(self.settings.db_url, create=False, read_only=True)
        except StoreError as e:
            raise DatabaseDown(str(e)) from None
        except TraceonError:
            raise
        except Exception as e:
            raise DatabaseDown(_driver_message(e)) from None
        try:
            yield opened
        finally:
            opened.close()

    def audit_key(self):
        if self._audit_key is None:
            from edge.console import audit

            self._audit_key = audit.AuditKey.load(self.settings.audit_key)
        return self._audit_key

    def keys(self) -> list:
        if self._keys is None:
            from edge.core.facehash import load_key

            self._keys = [load_key(path) for path in self.settings.key_files]
        return self._keys

    def chains(self) -> list:
        """The key chains, read at each photo trace: the collector moves them forward as retention passes an
        epoch, and an epoch it has moved past must be gone here too, without a restart."""
        from edge.core import keychain

        return [keychain.load(path) for path in self.settings.key_chains]

    def publisher(self):
        """The MQTT publisher of notices, made on first use; None when no broker was given."""
        if self.settings.broker is None:
            return None
        if self._publisher is None:
            from edge.console.notices_out import NoticePublisher

            self._publisher = NoticePublisher(self.settings.broker, self.settings.prefix)
        return self._publisher

    def close(self) -> None:
        if self._publisher is not None:
            self._publisher.close()
        if self._db is not None:
            self._db.close()


def _driver_message(e: Exception) -> str:
    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return f"the database cannot be reached ({first})"
