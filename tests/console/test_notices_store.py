"""Exposure notices in the database: a place and a slot, audited, never a FaceHash or a case id."""

# ruff: noqa: F811  (the fixtures are imported from tests/support, then named as test arguments)

from __future__ import annotations

import pytest
from support.console_db import audit_key, console_db, console_url, key_file  # noqa: F401  (fixtures)

from edge.console import audit, notices
from edge.core.errors import NoticeError

T0 = 1_800_000_000_000
H = 3_600_000


def publish(db, site="north", checkpoint="gate", start=T0, end=T0 + H, now=T0 + 2 * H):
    with db.transaction() as tx:
        return notices.publish(tx, None, site, checkpoint, start, end, "ann", "10.0.0.1", now_ms=now)


def test_publish_list_and_withdraw_are_audited(console_db, audit_key):
    a = publish(console_db)
    b = publish(console_db, checkpoint="hall", start=T0 + H, end=T0 + 2 * H)
    assert (a.site, a.checkpoint, a.from_ms, a.to_ms, a.withdrawn_ms) == ("north", "gate", T0, T0 + H, None)
    assert notices.current(console_db, now_ms=T0 + 3 * H) == [b, a]
    assert notices.for_place(console_db, "north", "gate", now_ms=T0 + 3 * H) == [a]
    with console_db.transaction() as tx:
        gone = notices.withdraw(tx, None, a.id, "ann", "10.0.0.1", now_ms=T0 + 3 * H)
    assert gone.withdrawn_ms == T0 + 3 * H and notices.current(console_db, now_ms=T0 + 3 * H) == [b]
    rows = audit.entries(console_db)
    assert [r.action for r in rows] == ["notice-withdrawn", "notice", "notice"]
    assert rows[0].detail == {"notice": a.id, "site": "north", "checkpoint": "gate", "from_ms": T0, "to_ms": T0 + H}
    assert audit.verify(console_db, audit_key) == []
    with pytest.raises(NoticeError, match="already withdrawn"), console_db.transaction() as tx:
        notices.withdraw(tx, None, a.id, "ann", "10.0.0.1")


def test_old_notices_leave_the_list(console_db):
    n = publish(console_db)
    assert notices.current(console_db, now_ms=T0 + notices.KEEP_MS) == [n]
    assert notices.current(console_db, now_ms=T0 + H + notices.KEEP_MS + 1) == []


@pytest.mark.parametrize(
    ("site", "checkpoint", "start", "end", "message"),
    [
        ("<script>", "gate", T0, T0 + H, "not a site name"),
        ("north", "gate'; --", T0, T0 + H, "not a checkpoint name"),
        ("north", "gate", T0 + H, T0, "must end after it starts"),
        ("north", "gate", T0, T0 + 8 * 24 * H, "at most 7 days"),
        ("north", "gate", "10:00", T0 + H, "a start and an end"),
    ],
)
def test_what_cannot_be_a_notice_is_refused_and_nothing_is_kept(console_db, site, checkpoint, start, end, message):
    with pytest.raises(NoticeError, match=message):
        publish(console_db, site, checkpoint, start, end)
    assert notices.current(console_db, now_ms=T0) == [] and audit.entries(console_db) == []


def test_withdrawing_what_is_not_there(console_db):
    for wrong, message in ((999, "no notice 999"), ("1; DROP TABLE notices", "not a notice number"), (-1, "not a")):
        with pytest.raises(NoticeError, match=message), console_db.transaction() as tx:
            notices.withdraw(tx, None, wrong, "ann", "10.0.0.1")
