"""Coverage through a real collector and a real broker: each unit's status (its last will too) and health
are stored as transitions, a trace over a window where a unit was offline says so, and hostile status and
health messages are refused or paced, never stored unbounded."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from support.collector import Collector, stream, wait_stored
from support.feeder import Feeder
from support.health import good_health
from support.unit_reports import Sender, UnitProcess, stored_rows, wait_rows

from edge.tracer import unit_reports


def trace_json(url: str, code: str) -> dict:
    said = subprocess.run(
        [sys.executable, "-m", "edge.cli", "trace", code, "--db", url, "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(said.stdout)


def test_a_trace_over_a_window_where_the_unit_was_offline_says_so(tmp_path, broker, codes, db_url):
    collector = Collector(broker.port, db_url)
    collector.wait_for("collecting")
    feeder = Feeder(tmp_path, broker.port)  # campus/door/unit-1's own link: online, events, then offline
    try:
        feeder.publish(stream(codes, 5))
        feeder.wait_delivered(5)
        wait_stored(db_url, 5)
        wait_rows(db_url, "statuses", lambda r: [s[4] for s in r] == ["online"], "the unit's online")
    finally:
        feeder.stop()
    library = UnitProcess(broker.port, "campus/library/unit-2", good_health(camera="no frame for 30 s"))
    library.kill()  # the broker publishes its last will: offline
    try:
        offline = wait_rows(
            db_url, "statuses", lambda r: [s[4] for s in r].count("offline") == 2, "both units offline", timeout=40
        )
        cameras = wait_rows(db_url, "health", lambda r: len(r) == 1, "the library's health report")
    finally:
        said = collector.stop()
    assert [(s[1], s[4]) for s in offline] == [
        ("door", "online"),
        ("door", "offline"),
        ("library", "online"),
        ("library", "offline"),
    ]
    assert cameras[0][1:] == ("library", "unit-2", cameras[0][3], "failing", "synchronized")
    text = subprocess.run(
        [sys.executable, "-m", "edge.cli", "trace", codes["barack_obama/1.jpg"], "--db", db_url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    coverage = text[text.index("Coverage") :]
    print(f"\n{said.strip().splitlines()[-1]}\n{coverage}")
    assert "campus/door\n    unit-1: offline " in coverage and "now (still so at its newest report)" in coverage
    assert "campus/library\n    unit-2: camera failing " in coverage and "unit-2: offline " in coverage
    gaps = trace_json(db_url, codes["barack_obama/1.jpg"])["gaps"]
    assert sorted((g["checkpoint"], g["kind"], g["to"]) for g in gaps) == [
        ("door", "offline", None),
        ("library", "camera", None),
        ("library", "offline", None),
    ]


def test_the_last_will_opens_an_offline_period_and_the_next_online_closes_it(tmp_path, broker, db_url):
    collector = Collector(broker.port, db_url)
    collector.wait_for("collecting")
    try:
        UnitProcess(broker.port, "campus/gate/unit-3", good_health()).kill()
        wait_rows(db_url, "statuses", lambda r: [s[4] for s in r] == ["online", "offline"], "online, then its will")
        back = UnitProcess(broker.port, "campus/gate/unit-3", good_health())
        rows = wait_rows(
            db_url, "statuses", lambda r: [s[4] for s in r] == ["online", "offline", "online"], "online again", 40
        )
        back.kill()
    finally:
        collector.stop()
    from edge.tracer import store

    db = store.open_store(db_url, read_only=True)
    try:
        [gap] = db.gaps(rows[0][3], rows[2][3] + 1)
    finally:
        db.close()
    assert (gap.device, gap.kind, gap.from_ms, gap.to_ms) == ("unit-3", "offline", rows[1][3], rows[2][3])
    assert rows[2][3] - rows[1][3] >= 0


def test_hostile_status_and_health_are_refused_or_paced_never_stored_unbounded(tmp_path, broker, db_url):
    url = db_url
    collector = Collector(broker.port, url)
    collector.wait_for("collecting")
    sender = Sender(broker.port)
    hostile = [
        ("a status topic naming no unit", "traceon/campus/do or/unit-1/status", b"offline", "not a unit's"),
        ("a status that is neither", "traceon/campus/door/unit-1/status", b"offline; DROP TABLE statuses", "status is"),
        ("a 20 kB health report", "traceon/campus/door/unit-2/health", b"{" + b" " * 20_000 + b"}", "bytes, more"),
        ("health that is not JSON", "traceon/campus/door/unit-3/health", b"MARK {", "not valid JSON"),
        (
            "health with an image in it",
            "traceon/campus/door/unit-4/health",
            json.dumps(good_health(image="MARK/9j/4AAQ")).encode(),
            "not a health report",
        ),
        (
            "health whose camera is 5 kB",
            "traceon/campus/door/unit-5/health",
            json.dumps(good_health(camera="MARK" * 1250)).encode(),
            "not a health report",
        ),
    ]
    try:
        for _, topic, payload, _ in hostile:
            sender.send(topic, payload)
        collector.wait_for(f"refused #{len(hostile)} ")
        for n in range(400):  # one unit flapping, and flooding health reports of every state
            sender.send("traceon/campus/hall/unit-9/status", b"online" if n % 2 else b"offline")
            failing = {"camera": "broken"} if n % 2 else {}
            sender.send("traceon/campus/hall/unit-9/health", json.dumps(good_health(**failing)).encode())
        sender.send("traceon/campus/hall/unit-9/status", b"online")  # where it ends
        statuses = wait_rows(url, "statuses", lambda r: r and r[-1][4] == "online", "the flood's last word", 40)
        health = stored_rows(url, "health")
    finally:
        sender.close()
        said = collector.stop()
    refusals = [line for line in said.splitlines() if line.startswith("refused #")]
    print()
    for (what, _, payload, reason), line in zip(hostile, refusals, strict=True):
        print(f"{what:<32} {len(payload):>6} B -> {line}")
        assert reason in line and "MARK" not in line, (what, line)
    assert len(refusals) == len(hostile)
    print(f"flood of 401 statuses and 400 health reports -> {len(statuses)} status rows, {len(health)} health rows")
    print(said.strip().splitlines()[-1])
    assert {s[:3] for s in statuses} == {("campus", "hall", "unit-9")} and 1 <= len(statuses) <= 4
    assert 1 <= len(health) <= 3  # one read per HEALTH_EVERY_MS; the test's flood lasts seconds
    assert "over a unit's pace skipped" in said
    assert unit_reports.HEALTH_EVERY_MS >= 10_000


@pytest.mark.parametrize(
    ("said", "kept"),
    [("ok", "ok"), ("not opened yet", "ok"), ("ended", "ok"), ("closed", "ok"), ("reopening: no frame", "failing")],
)
def test_only_a_source_in_trouble_is_a_failing_camera(said, kept):
    """A unit's first health report comes before its camera opens: that is no camera failure (the trace demo's
    checkpoints were all shown 'camera failing' from their first second)."""
    body = good_health()
    body["camera"] = said
    report = unit_reports.health(("campus", "door", "unit-1"), json.dumps(body).encode(), 1_000)
    assert report.camera == kept
