"""Guard test (issue 18, item 8): a delivered event whose delete the full disk refuses is never sent again.

The fault tests fill the disk while the unit makes events, so those wait in memory and are deleted from
memory: a delete that fails on disk is never reached there, and a resend loop could come back unseen.
Here the events are on disk and in flight when the disk fills, with the write-ahead log emptied first, so
that the delete after each PUBACK has to grow the log and gets SQLite's "disk full" (SQLITE_FULL).

The full disk is a small tmpfs, which needs root (else the test skips, saying so).
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections import Counter
from pathlib import Path

from support.disk import fill
from support.events import sample_event
from support.mqtt import Subscriber
from support.wait import wait_until

from edge.core.topics import Topics
from edge.unit import config
from edge.unit.outbox import Outbox, summary
from edge.unit.uplink import BrokerLink


def stored(path: Path) -> int:
    """Events still in the outbox file, read by a connection of the test's own."""
    return summary(path, timeout=10).depth


def test_a_delete_refused_by_a_full_disk_never_sends_the_event_again(tmp_path, broker, small_disk):
    path = small_disk / "outbox.sqlite"
    outbox = Outbox(path, 10_000, 10**8)
    made = [sample_event(n) for n in range(60)]
    for event in made:
        outbox.put(event)
    # every event in the main file and an empty log: the first delete must grow the log, on a full disk
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0
    assert Path(f"{path}-wal").stat().st_size == 0
    filler = fill(small_disk)
    ids = {e["event_id"] for e in made}
    subscriber = Subscriber(broker.port, "traceon/+/+/+/events", "guard-outbox-tracer")
    acked: list[dict] = []
    settings = config.MqttConfig(host="127.0.0.1", port=broker.port, keepalive=5, health_every=3600, in_flight=20)
    link = BrokerLink(settings, Topics("traceon", "s1", "door", "d1"), outbox, dict, lambda: None, acked.append)
    link.start()

    def received() -> list[str]:
        return [e["event_id"] for e in subscriber.events()]

    def twice() -> int:
        """Events that reached the tracer more than once."""
        return sum(1 for n in Counter(received()).values() if n > 1)

    try:
        subscriber.wait_for(
            lambda s: set(received()) >= ids or twice(),
            30,
            lambda: f"all {len(ids)} events ({len(set(received()))} came)",
        )
        assert not twice(), f"{twice()} event(s) sent again while the disk refused their delete"
        wait_until(lambda: len(acked) >= len(made), 10, "every PUBACK")
        refused = outbox.problem
        assert stored(path) == len(made)  # every delete was refused: the fault this test is about was reached
        time.sleep(2 * 2.0)  # only to show that no second copy follows (two of the outbox's retries of the deletes)
        assert not twice(), f"{twice()} event(s) sent again while the disk refused their delete"
        filler.unlink()
        wait_until(lambda: stored(path) == 0, 30, "the delivered events deleted once there was room")
        time.sleep(1.0)  # only to show that freeing the disk sends nothing again either
    finally:
        link.stop()
        outbox.close()
        subscriber.close()
    assert refused.startswith("cannot remove delivered events") and "disk is full" in refused, refused
    assert twice() == 0 and set(received()) == ids and len(received()) == len(made)
    assert len(acked) == len(made)
