"""The console's database in tests: an audit key file and the console's tables on SQLite or PostgreSQL.

Fixtures, imported by the console's store tests (`from support.console_db import audit_key, console_db, console_url`).
"""

from __future__ import annotations

import pytest

PASSWORD = "correct horse battery staple"  # long enough for the console's minimum


@pytest.fixture
def key_file(tmp_path):
    from edge.console.audit import AuditKey

    path = tmp_path / "audit.key"
    AuditKey.generate(path)
    return path


@pytest.fixture
def audit_key(key_file):
    from edge.console.audit import AuditKey

    return AuditKey.load(key_file)


@pytest.fixture(params=["sqlite", "postgresql"])
def console_url(request, tmp_path):
    """A fresh database: an SQLite file, or a PostgreSQL database."""
    return str(tmp_path / "sightings.sqlite") if request.param == "sqlite" else request.getfixturevalue("postgres")


@pytest.fixture
def console_db(console_url, audit_key):
    from edge.console.db import ConsoleDb

    db = ConsoleDb.open(console_url, audit_key=audit_key)
    yield db
    db.close()
