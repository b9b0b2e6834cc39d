"""On PostgreSQL the console's own role may append to the audit log but never change it (config/console-grants.sql)."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from support.console_db import PASSWORD

from edge.console import accounts, audit, notices, sessions
from edge.console.audit import AuditKey
from edge.console.db import ConsoleDb
from edge.core.errors import ConsoleDbError

GRANTS = Path(__file__).parents[2] / "config" / "console-grants.sql"


@pytest.fixture
def as_console(postgres, tmp_path):
    """The console's tables made by the owner, the grants script run, and the URL of the console's role."""
    key = AuditKey.generate(tmp_path / "audit.key")
    owner = ConsoleDb.open(postgres, audit_key=key)  # the owner (traceon) creates the tables
    with owner.transaction() as tx:
        accounts.add_user(tx, "ann", PASSWORD, "tracer", None, "server:root", "local")
    owner.close()
    with psycopg.connect(postgres, autocommit=True) as db:
        db.execute(GRANTS.read_text())
    return postgres.replace("//traceon@", "//traceon_console@"), key


def test_the_console_role_works_but_cannot_rewrite_the_audit_log(as_console):
    url, key = as_console
    db = ConsoleDb.open(url, audit_key=key)  # the tables exist: opening creates nothing, needs no CREATE right
    assert accounts.login(db, "ann", PASSWORD, "10.0.0.1").user is not None
    with db.transaction() as tx:
        token, _ = sessions.open_session(tx, "ann", "10.0.0.1")
        notice = notices.publish(tx, None, "north", "gate", 0, 60_000, "ann", "10.0.0.1")
        notices.withdraw(tx, None, notice.id, "ann", "10.0.0.1")
        audit.record(tx, key, "ann", "trace", "10.0.0.1", {"case_id": "C1"})
    assert sessions.session(db, token).user.name == "ann"
    assert [e.action for e in audit.entries(db)][:3] == ["trace", "notice-withdrawn", "notice"]
    for statement in ("UPDATE audit SET address = 'x'", "DELETE FROM audit WHERE seq = 1", "TRUNCATE audit"):
        with pytest.raises(ConsoleDbError, match="permission denied for table audit"), db.transaction() as tx:
            tx.execute(statement)
    with pytest.raises(ConsoleDbError, match="must be owner of table audit"), db.transaction() as tx:
        tx.execute("DROP TABLE audit")
    assert audit.verify(db, key) == []
    db.close()


def test_the_console_role_cannot_create_tables_so_an_empty_database_is_refused_clearly(postgres):
    with psycopg.connect(postgres, autocommit=True) as db:
        db.execute("CREATE ROLE traceon_newcomer LOGIN")  # roles are the server's: a name no other test uses
    with pytest.raises(ConsoleDbError, match="permission denied for schema public"):
        ConsoleDb.open(postgres.replace("//traceon@", "//traceon_newcomer@"))
