"""Exposure notices: a place and a time slot ("checkpoint C, 10:00–10:45"), never a person.

A notice holds no FaceHash and no case id (the audit row of its publication says who published it and
when; the trace it came from has its own row). Publishing and withdrawing are both audited.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from edge.console import audit
from edge.console.audit import AuditKey
from edge.console.db import ConsoleDb, Tx
from edge.core.errors import NoticeError
from edge.core.topics import UNIT_NAME

KEEP_MS = 28 * 86_400_000  # a notice is shown until its slot is this old (beyond any incubation period)
LONGEST_SLOT_MS = 7 * 86_400_000
COLUMNS = "id, site, checkpoint, from_ms, to_ms, published_ms, withdrawn_ms"


@dataclass(frozen=True)
class Notice:
    id: int
    site: str
    checkpoint: str
    from_ms: int
    to_ms: int
    published_ms: int
    withdrawn_ms: int | None


def _now() -> int:
    return int(time.time() * 1000)


def publish(
    tx: Tx,
    key: AuditKey | None,
    site: str,
    checkpoint: str,
    from_ms: int,
    to_ms: int,
    by: str,
    address: str,
    now_ms: int | None = None,
) -> Notice:
    """A new notice for one checkpoint and slot, audited in the same transaction."""
    for what, name in (("site", site), ("checkpoint", checkpoint)):
        if not isinstance(name, str) or not UNIT_NAME.fullmatch(name):
            raise NoticeError(f"{name!r:.60} is not a {what} name")
    if not all(isinstance(t, int) and not isinstance(t, bool) and 0 <= t < 2**53 for t in (from_ms, to_ms)):
        raise NoticeError("a notice's slot needs a start and an end time")
    if to_ms <= from_ms:
        raise NoticeError("a notice's slot must end after it starts")
    if to_ms - from_ms > LONGEST_SLOT_MS:
        raise NoticeError("a notice's slot may be at most 7 days long: name the hours of the exposure")
    now = _now() if now_ms is None else now_ms
    rows = tx.query(
        "INSERT INTO notices (site, checkpoint, from_ms, to_ms, published_ms) VALUES (?, ?, ?, ?, ?) RETURNING id",
        (site, checkpoint, from_ms, to_ms, now),
    )
    notice = Notice(int(rows[0][0]), site, checkpoint, from_ms, to_ms, now, None)
    audit.record(tx, audit.key_of(tx, key), by, "notice", address, _detail(notice), now)
    return notice


def withdraw(tx: Tx, key: AuditKey | None, notice_id: int, by: str, address: str, now_ms: int | None = None) -> Notice:
    """Take a notice back (a mistaken slot): it leaves every list; the audit log keeps both rows."""
    now = _now() if now_ms is None else now_ms
    rows = tx.query(f"SELECT {COLUMNS} FROM notices WHERE id = ?", (_id(notice_id),))
    if not rows:
        raise NoticeError(f"there is no notice {notice_id}")
    notice = Notice(*rows[0])
    if notice.withdrawn_ms is not None:
        raise NoticeError(f"notice {notice_id} was already withdrawn")
    tx.execute("UPDATE notices SET withdrawn_ms = ? WHERE id = ?", (now, notice.id))
    withdrawn = Notice(*rows[0][:6], now)
    audit.record(tx, audit.key_of(tx, key), by, "notice-withdrawn", address, _detail(withdrawn), now)
    return withdrawn


def current(db: ConsoleDb, now_ms: int | None = None) -> list[Notice]:
    """Notices not withdrawn whose slot ended less than KEEP_MS ago, the newest slot first."""
    now = _now() if now_ms is None else now_ms
    with db.transaction() as tx:
        rows = tx.query(
            f"SELECT {COLUMNS} FROM notices WHERE withdrawn_ms IS NULL AND to_ms >= ? ORDER BY from_ms DESC, id DESC",
            (now - KEEP_MS,),
        )
    return [Notice(*row) for row in rows]


def for_place(db: ConsoleDb, site: str, checkpoint: str, now_ms: int | None = None) -> list[Notice]:
    """The current notices of one checkpoint (what its retained MQTT message lists)."""
    return [n for n in current(db, now_ms) if n.site == site and n.checkpoint == checkpoint]


def _id(notice_id) -> int:
    try:
        value = int(notice_id)
    except (TypeError, ValueError):
        raise NoticeError(f"{notice_id!r:.40} is not a notice number") from None
    if not 0 < value < 2**62:
        raise NoticeError(f"{notice_id!r:.40} is not a notice number")
    return value


def _detail(notice: Notice) -> dict:
    return {
        "notice": notice.id,
        "site": notice.site,
        "checkpoint": notice.checkpoint,
        "from_ms": notice.from_ms,
        "to_ms": notice.to_ms,
    }
