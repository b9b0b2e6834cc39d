"""config/mosquitto-collect.conf's size limits: the broker passes on no message larger than the collector
takes (64 KiB of payload), and the largest event a unit can make is well inside it."""

from __future__ import annotations

import json
import threading

import paho.mqtt.client as mqtt
from support.collector import Collector, wait_stored
from support.data import ROOT
from support.events import KEY, event_of
from support.feeder import Feeder
from support.wait import wait_until

from edge.core import events, facehash
from edge.tracer import intake

TOPIC = "traceon/campus/door/unit-1/events"


def setting(name: str) -> int:
    lines = (ROOT / "config" / "mosquitto-collect.conf").read_text().splitlines()
    return int(next(line.split()[1] for line in lines if line.startswith(f"{name} ")))


def crowded(codes: list[str]) -> dict:
    """An event of 100 persons (the schema's most), every number and name as long as the schema lets it be."""
    body = event_of(codes, "door", 0)
    body.update(faces=10000, frames=60, model="m" * 67 + "@0123456789ab", software="traceon-edge " + "9" * 51)
    for person in body["persons"]:
        person.update(frames=60, quality={"size": 10000, "frontalness": 2.2250738585072014e-308, "sharpness": 1e-300})
    return events.validate(body)


def test_the_largest_event_fits_and_the_broker_limit_is_the_collectors():
    assert setting("message_size_limit") == intake.MAX_BYTES
    assert setting("max_queued_bytes") >= 1000 * intake.MAX_BYTES  # a thousand of the largest events at least
    longest = f"fh1:{KEY.id}:" + "a" * 206  # the longest FaceHash the schema allows
    body = crowded([longest] * 100)
    size = len(json.dumps(body, separators=(",", ":"), sort_keys=True))  # as a unit's outbox writes it
    assert size < 36_000 < intake.MAX_BYTES  # the conf says "about 35 kB"


class Publisher:
    """A bare MQTT 3.1.1 client, which the broker acknowledges even for a message it drops. (An MQTT 5 one is
    answered 0x95, Packet too large, which paho takes as a protocol error: it reconnects and sends it again.)"""

    def __init__(self, port: int, protocol=mqtt.MQTTv311):
        self.answers: dict[int, mqtt.ReasonCode] = {}
        self.dropped: list[str] = []  # why paho dropped the connection, each time
        self.lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="big-sender", protocol=protocol)
        self.client.on_publish = self._acked
        self.client.on_disconnect = lambda client, userdata, flags, reason, properties: self.dropped.append(str(reason))
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _acked(self, client, userdata, mid, reason, properties) -> None:
        with self.lock:
            self.answers[mid] = reason

    def send(self, size: int) -> None:
        mid = self.client.publish(TOPIC, b"x" * size, qos=1).mid
        wait_until(lambda: mid in self.answers, 20, f"the PUBACK of a {size:,}-byte message")

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def test_a_message_over_64_kib_is_not_passed_on_and_a_crowded_event_is(tmp_path, broker):
    url = str(tmp_path / "c.sqlite")
    collector = Collector(broker.port, url, "collector-1", "--max-persons", "100")  # the schema's most, stored
    collector.wait_for("collecting")
    sender, unit = Publisher(broker.port), Feeder(tmp_path, broker.port)
    try:
        sender.send(intake.MAX_BYTES + 1)  # dropped at the broker
        sender.send(intake.MAX_BYTES)  # passed on: the collector refuses it as not JSON
        real = [str(facehash.from_packed(KEY.id, bytes([n]) * 128, 1024)) for n in range(100)]
        unit.publish([crowded(real)])
        unit.wait_delivered(1)
        wait_stored(url, 1)
        collector.wait_for("not valid JSON")  # sent after the one over the limit, so that one came first, if at all
    finally:
        sender.close()
        unit.stop()
        said = collector.stop()
    assert "stored 1, already stored 0, refused 1" in said  # the message over the limit never reached it
    assert "not valid JSON" in said


def test_an_mqtt5_publisher_of_a_message_over_the_limit_loses_its_connection(broker):
    """What a unit (paho, MQTT 5) would see: the broker answers 0x95, paho calls that a protocol error."""
    sender = Publisher(broker.port, mqtt.MQTTv5)
    try:
        sender.client.publish(TOPIC, b"x" * (intake.MAX_BYTES + 1), qos=1)
        wait_until(lambda: sender.dropped, 20, "paho to drop the connection")
    finally:
        sender.close()
    assert sender.dropped[0] == "Protocol error"
