"""A collector on a real mosquitto takes fh1 units' events (schema 2) and fh2 units' events (schema 3) side by
side, refuses a hostile fh2 event in one line, and a trace of each scheme then finds that scheme's rows."""

from __future__ import annotations

import numpy as np
from support import schemes
from support.collector import Collector, wait_stored
from support.events import NOW, SINCE, STRIDE, event_of
from support.feeder import Feeder

from edge.tracer import store, trace

PEOPLE = ["barack_obama/1.jpg", "joe_biden/1.jpg", "rose_leslie/1.jpg", "kit_harington/1.jpg"]


def test_a_collector_stores_fh1_and_fh2_units_side_by_side(tmp_path, broker, embeddings, db_url):
    fh1 = [
        event_of([str(schemes.hasher("fh1").hash(embeddings[p]))], "door", 60 * n)
        | {"schema_version": 2, "clock": "synchronized"}
        for n, p in enumerate(PEOPLE)
    ]
    fh2 = [
        schemes.event([str(schemes.hasher("fh2").hash(embeddings[p]))], "gate", 60 * n + 30)
        for n, p in enumerate(PEOPLE)
    ]
    low = schemes.fh2_person(np.random.default_rng(5))
    low[0] = -128  # out of range: the schema's pattern cannot see it
    hostile = schemes.event([schemes.fh2_text(low)], "gate", 999)
    collector = Collector(broker.port, db_url)
    collector.wait_for("collecting")
    door, gate = Feeder(tmp_path, broker.port, "door"), Feeder(tmp_path, broker.port, "gate")
    try:
        for a, b in zip(fh1, fh2, strict=True):
            door.publish([a])
            gate.publish([b])
        gate.publish([hostile])
        wait_stored(db_url, 8)
        line = collector.wait_for("refused #1")
    finally:
        door.stop()
        gate.stop()
        said = collector.stop()
    assert "coordinate out of range" in line and "stored 8, already stored 0, refused 1" in said
    db = store.open_store(db_url, read_only=True)
    try:
        for scheme, sent, checkpoint in (("fh1", fh1, "door"), ("fh2", fh2, "gate")):
            probe = str(schemes.hasher(scheme).hash(embeddings["barack_obama/3.jpg"]))
            result = trace.run(db, [probe], STRIDE, SINCE, now=NOW)
            assert [s.row.event_id for s in result.sightings] == [sent[0]["event_id"]], scheme
            assert result.point.rows == 4 and {s.row.checkpoint for s in result.sightings} == {checkpoint}
    finally:
        db.close()
