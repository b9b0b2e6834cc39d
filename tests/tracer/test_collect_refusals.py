"""`traceon-edge collect` refuses what it must and names each problem: hostile messages (one line each, no trace
changed), a wrong password over TLS, a second collector with the same client id, bad broker options; and an
event is checked as the collector checks it. What it loses and stores: test_collect.py."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import pytest
from support.collector import Collector, stream, wait_stored
from support.events import KEY, NOW, SINCE, STRIDE, checked, event_of
from support.feeder import Feeder
from support.servers import Broker, make_certificates, tls_listener

from edge.core import events, facehash
from edge.core.errors import EX_CONFIG
from edge.core.topics import Topics
from edge.tracer import store, trace
from edge.unit import config
from edge.unit.outbox import Outbox
from edge.unit.uplink import BrokerLink


def hostile(codes: dict) -> tuple[list[tuple[str, str, bytes, str]], dict]:
    """(what, topic, payload, expected reason) and the good event some of them imitate. Payloads carry MARK where
    they can, to see that no refusal echoes them."""
    door = "traceon/campus/door/unit-1/events"
    good = event_of([codes["joe_biden/1.jpg"]], "door", 600)

    def variant(**changes) -> bytes:
        return json.dumps({**good, "event_id": str(uuid.uuid4()), **changes}).encode()

    person = good["persons"][0]
    other_key = facehash.FaceHasher(facehash.Key(b"x" * 32), facehash.load_scheme()).hash([0.1] * 128)
    short = facehash.FaceHasher(KEY, facehash.load_scheme(), 512).hash([0.1] * 128)
    stale = event_of([codes["joe_biden/1.jpg"]], "door", -60 * 86400)
    return [
        ("array nested 100,000 deep", door, b"[" * 100_000 + b"]" * 100_000, "bytes, more than"),
        ("array nested 20,000 deep", door, b"[" * 20_000 + b"]" * 20_000, "nested deeper"),
        ("object nested 8 deep", door, variant(face={"a": {"b": {"c": {"d": {"e": {"f": "MARK"}}}}}}), "nested deeper"),
        ("100 kB software string", door, variant(software="traceon-edge " + "MARK" * 25_000), "bytes, more than"),
        ("200-character software string", door, variant(software="traceon-edge " + "M" * 200), "software is longer"),
        ("NaN quality", door, variant().replace(b'"frontalness": 0.9', b'"frontalness": NaN'), "NaN"),
        ("1e999 sharpness", door, variant().replace(b'"sharpness": 80.0', b'"sharpness": 1e999'), "too large"),
        ("a 5,000-digit integer", door, variant().replace(b'"frames": 3', b'"frames": ' + b"9" * 5000), "valid JSON"),
        ("not JSON", door, b"MARK MARK {", "not valid JSON"),
        ("not UTF-8", door, b"\xff\xfe" + "MARK".encode("utf-16-le"), "not UTF-8"),
        ("a JSON array, not an object", door, b'["MARK"]', "not a JSON object"),
        ("a key given twice", door, variant()[:-1] + b', "site": "MARK"}', "repeats a key"),
        ("an image field", door, variant(face="MARK/9j/4AAQSkZJRgABAQ"), "a field the schema does not allow"),
        (
            "a required field missing",
            door,
            json.dumps({k: v for k, v in good.items() if k != "key_id"}).encode(),
            "lacks the required field(s) key_id",
        ),
        ("schema version 4", door, variant(schema_version=4), "schema versions 1, 2 and 3"),
        (
            "FaceHash not base32",
            door,
            variant(persons=[dict(person, facehash="fh1:" + KEY.id + ":" + "a" * 22)]),
            "not a readable FaceHash",
        ),
        ("FaceHash of another key", door, variant(persons=[dict(person, facehash=str(other_key))]), "another key"),
        (
            "FaceHashes of two lengths",
            door,
            variant(persons=[person, dict(person, facehash=str(short))]),
            "different lengths",
        ),
        ("body names another site", door, variant(site="elsewhere"), "another unit than the topic"),
        (
            "topic with a forged log line",
            "traceon/campus/door\u2028FORGED refused 0/unit-1/events",
            variant(),
            "not a unit's events topic",
        ),
        ("older than the retention", door, json.dumps(stale).encode(), "older than the retention"),
        (
            "starts in 9999",
            door,
            variant(started_at="9999-12-31T00:00:00.000Z", ended_at="9999-12-31T00:00:01.000Z"),
            "more than a day ahead",
        ),
        ("ends before it starts", door, variant(ended_at=events.utc(0)), "ends before it starts"),
        ("an event id reused with other content", door, json.dumps({**good, "frames": 7}).encode(), "other content"),
    ], good


@pytest.fixture
def broker_without_size_limit(tmp_path):
    """config/mosquitto-collect.conf passes on nothing over 64 KiB (test_broker_limits.py); a broker set up
    otherwise does, and the collector must refuse it itself."""
    (tmp_path / "broker").mkdir()
    b = Broker(tmp_path / "broker", extra="message_size_limit 0\n")
    b.start()
    yield b
    b.stop()


def test_hostile_messages_are_refused_one_line_each_and_change_no_trace(tmp_path, broker_without_size_limit, codes):
    broker = broker_without_size_limit
    url = str(tmp_path / "c.sqlite")
    table, good = hostile(codes)
    collector = Collector(broker.port, url)
    collector.wait_for("collecting")
    unit = Feeder(tmp_path, broker.port)
    day = [event_of([codes["barack_obama/1.jpg"], codes["joe_biden/2.jpg"]], "door", 0), good]
    try:
        unit.publish(day)
        wait_stored(url, 2)
        before = trace_json(url, codes["barack_obama/3.jpg"])
        import paho.mqtt.client as mqtt

        sender = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        sender.connect("127.0.0.1", broker.port)
        sender.loop_start()
        for _, topic, payload, _ in table:
            sender.publish(topic, payload, qos=1).wait_for_publish(5)
        collector.wait_for(f"refused #{len(table)} ")
        unit.publish([event_of([codes["kit_harington/1.jpg"]], "door", 7200)])  # it is still collecting
        wait_stored(url, 3)
        sender.disconnect()
        sender.loop_stop()
    finally:
        unit.stop()
        said = collector.stop()
    refusals = [line for line in said.splitlines() if line.startswith("refused #")]
    print()
    for (what, _, payload, reason), line in zip(table, refusals, strict=True):
        print(f"{what:<40} {len(payload):>7} B -> {line}")
        assert reason in line, (what, line)
        assert len(line) <= 300 and "MARK" not in line and line.isprintable()
    assert len(refusals) == len(table) == 24
    assert f"stored 3, already stored 0, refused {len(table)}" in said
    assert collector.process.returncode == 0
    assert trace_json(url, codes["barack_obama/3.jpg"]) == before


def trace_json(url: str, code: str) -> dict:
    db = store.open_store(url)
    try:
        result = trace.run(db, [code], STRIDE, SINCE, now=NOW + STRIDE)
        return {
            "sightings": [s.row.event_id for s in result.sightings],
            "contacts": [[c.rows[0].code_text for c in v.contacts] for v in result.visits],
        }
    finally:
        db.close()


def test_collect_over_tls_with_a_password_and_a_clear_refusal_of_a_wrong_one(tmp_path, codes):
    make_certificates(tmp_path)
    (tmp_path / "passwords").write_text("")
    subprocess.run(["mosquitto_passwd", "-b", str(tmp_path / "passwords"), "tracer", "right horse"], check=True)
    port, lines = tls_listener(tmp_path, require_certificate=False)
    broker = Broker(tmp_path, extra=lines + f"password_file {tmp_path / 'passwords'}\n")
    broker.conf.write_text(broker.conf.read_text().replace("allow_anonymous true", "allow_anonymous false"))
    broker.start()
    (tmp_path / "wrong").write_text("wrong horse\n")
    (tmp_path / "right").write_text("right horse\n")
    for f in ("wrong", "right"):
        (tmp_path / f).chmod(0o600)
    url = str(tmp_path / "c.sqlite")
    secure = ["--tls-ca", str(tmp_path / "ca.crt"), "--username", "tracer", "--password-file"]
    try:
        wrong = Collector(port, url, "c1", *secure, str(tmp_path / "wrong"), tls=True)
        assert wrong.process.wait(30) == EX_CONFIG
        said = wrong.stop()
        assert "the broker refused collector c1: not authorised (a wrong password" in said, said
        right = Collector(port, url, "c1", *secure, str(tmp_path / "right"), tls=True)
        right.wait_for("collecting")
        sender_settings = config.MqttConfig(
            host="localhost",
            port=port,
            tls={"ca_file": tmp_path / "ca.crt"},
            username="tracer",
            password_file=tmp_path / "right",
            keepalive=5,
        )
        outbox = Outbox(tmp_path / "outbox.sqlite", 100, 10**6)
        delivered: list = []
        link = BrokerLink(
            sender_settings, Topics("traceon", "campus", "door", "unit-1"), outbox, dict, lambda: None, delivered.append
        )
        link.start()
        outbox.put(stream(codes, 1)[0])
        wait_stored(url, 1)
        link.stop()
        assert "stored 1," in right.stop()
    finally:
        broker.stop()


def test_a_second_collector_with_the_same_client_id_is_named_as_the_problem(tmp_path, broker):
    url = str(tmp_path / "c.sqlite")
    first = Collector(broker.port, url, "same-id")
    first.wait_for("collecting")
    second = Collector(broker.port, str(tmp_path / "d.sqlite"), "same-id")
    for c in (first, second):  # mosquitto 2.0 closes the older connection without a reason; they take turns
        c.wait_for("most likely another client uses the client id same-id; give each collector its own --client-id")
    first.stop()
    second.stop()


def test_bad_broker_options_are_named(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "edge.cli",
            "collect",
            "--broker",
            "localhost:1883",
            "--db",
            str(tmp_path / "x"),
            "--tls-cert",
            str(tmp_path / "missing.crt"),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == EX_CONFIG
    assert "--tls-ca" in result.stderr or "--tls-cert/--tls-key" in result.stderr


def test_an_event_is_checked_as_the_collector_checks_it(codes):
    body = event_of([codes["barack_obama/1.jpg"]], "door", 0)
    event = checked(body)
    assert event.codes[0] == facehash.parse(codes["barack_obama/1.jpg"]).packed
    assert event.ended_ms - event.started_ms == 1000
    long = dict(body, ended_at=events.utc(events.parse_utc(body["started_at"]).timestamp() + 3600))
    assert checked(long).ended_ms == checked(long).started_ms  # the unit's clock stepped forward mid-burst
