"""The locked-down broker of docs/BROKER.md: real mosquitto with config/mosquitto-locked.conf and
config/mosquitto-acl. A unit writes only under its own prefix and reads only its own trigger, a collector
reads events and writes nothing, only the operator triggers, and nobody can take a unit's client id."""

from __future__ import annotations

import logging
import subprocess
import threading
import time
import uuid

import paho.mqtt.client as mqtt
import pytest
from support.data import ROOT
from support.events import sample_event
from support.servers import Broker
from support.wait import wait_until

from edge.core.topics import Topics
from edge.unit import config
from edge.unit.outbox import Outbox
from edge.unit.uplink import BrokerLink

UNIT_A, UNIT_B = "s1/door/unit-a", "s1/hall/unit-b"
ACCOUNTS = [UNIT_A, UNIT_B, "collector-1", "collector-2", "operator"]


@pytest.fixture
def locked(tmp_path):
    """mosquitto with the shipped lock-down, one account each (collector-2 added as docs/BROKER.md says)."""
    passwords = tmp_path / "passwd"
    passwords.write_text("")
    for account in ACCOUNTS:
        subprocess.run(["mosquitto_passwd", "-b", str(passwords), account, f"pw-{account}"], check=True)
    acl = tmp_path / "acl"
    collector_2 = "\nuser collector-2\ntopic read traceon/+/+/+/events\n"
    acl.write_text((ROOT / "config" / "mosquitto-acl").read_text() + collector_2)
    settings = (ROOT / "config" / "mosquitto-locked.conf").read_text()
    settings = settings.replace("/etc/mosquitto/traceon.passwd", str(passwords)).replace(
        "/etc/mosquitto/traceon.acl", str(acl)
    )
    broker = Broker(tmp_path, extra=settings.replace("allow_anonymous false\n", ""), anonymous=False)
    broker.start()
    yield broker
    broker.stop()


class Account:
    """A plain MQTT 5 client logged in as one account: what it received and how it was answered."""

    def __init__(self, port: int, user: str, *topics: str, client_id: str = "", password: str = ""):
        self.messages: list[tuple[str, bytes, bool]] = []
        self.connects: list[str] = []
        self.disconnects = 0
        self.ready = threading.Event()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=client_id or f"probe-{uuid.uuid4()}", protocol=mqtt.MQTTv5
        )
        self.client.username_pw_set(user, password or f"pw-{user}")
        self.client.on_connect = lambda c, u, f, reason, p: self._connected(reason, topics)
        self.client.on_subscribe = lambda *a: self.ready.set()
        self.client.on_message = lambda c, u, m: self.messages.append((m.topic, m.payload, m.retain))
        self.client.on_disconnect = lambda *a: setattr(self, "disconnects", self.disconnects + 1)
        self.client.connect("127.0.0.1", port, keepalive=5)
        self.client.loop_start()

    def _connected(self, reason, topics) -> None:
        self.connects.append(str(reason))
        if reason.is_failure:
            self.ready.set()
            return
        for topic in topics:
            self.client.subscribe(topic, qos=1)
        if not topics:
            self.ready.set()

    def publish(self, topic: str, payload: str, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)

    def topics(self) -> list[str]:
        return [t for t, _, _ in self.messages]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def unit_link(tmp_path, port: int, account: str, on_trigger=lambda: None) -> tuple[BrokerLink, Outbox]:
    password = tmp_path / f"password-{account.replace('/', '_')}"
    password.write_text(f"pw-{account}\n")
    password.chmod(0o600)
    settings = config.MqttConfig(
        host="127.0.0.1", port=port, username=account, password_file=password, keepalive=5, health_every=3600
    )
    outbox = Outbox(tmp_path / f"outbox-{account.replace('/', '_')}.sqlite", 1000, 10**7)
    link = BrokerLink(settings, Topics("traceon", *account.split("/")), outbox, dict, on_trigger)
    link.start()
    assert link.connected.wait(10), link.last_error
    return link, outbox


def test_nobody_without_an_account_gets_in(locked):
    anonymous = Account(locked.port, "", "#")
    wrong = Account(locked.port, UNIT_A, "#", password="guess")
    for probe in (anonymous, wrong):
        wait_until(lambda p=probe: p.connects, 10, "the broker's answer to a login without an account")
        assert probe.connects[0] in ("Not authorized", "Bad user name or password"), probe.connects
        probe.close()


def test_a_unit_writes_only_under_its_own_prefix_and_reads_no_events(locked):
    collector = Account(locked.port, "collector-1", "traceon/+/+/+/events")
    operator = Account(locked.port, "operator", "traceon/+/+/+/status", "traceon/+/+/+/health")
    b_trigger = Account(locked.port, UNIT_B, "traceon/s1/hall/unit-b/cmd/trigger")
    a = Account(locked.port, UNIT_A, "traceon/#", "traceon/+/+/+/events", "traceon/s1/hall/unit-b/cmd/trigger")
    for account in (collector, operator, b_trigger, a):
        assert account.ready.wait(10)
    try:
        # forgeries first: had the broker taken them, they would reach their readers before what follows
        a.publish("traceon/s1/hall/unit-b/events", "forged event")
        a.publish("traceon/s1/hall/unit-b/status", "offline", retain=True)
        a.publish("traceon/s1/hall/unit-b/health", "{}", retain=True)
        a.publish("traceon/s1/hall/unit-b/cmd/trigger", "go")
        a.publish("traceon/s1/door/unit-a/events", "its own event")
        b_trigger.publish("traceon/s1/hall/unit-b/events", "b's event")  # one connection per account
        operator.publish("traceon/s1/hall/unit-b/cmd/trigger", "the operator's trigger")
        wait_until(
            lambda: len(collector.messages) == 2 and b_trigger.messages,
            10,
            "the two genuine events at the collector and the operator's trigger at unit B",
        )
        late = Account(locked.port, "operator", "traceon/+/+/+/status")  # would get a retained forgery
        assert late.ready.wait(10)
        # only to show that nothing more arrives: no retained forgery within 0.5 s (mosquitto sends retained
        # messages right after the SUBACK that set `ready`)
        time.sleep(0.5)
        late.close()
    finally:
        for account in (collector, operator, b_trigger, a):
            account.close()
    assert collector.topics() == ["traceon/s1/door/unit-a/events", "traceon/s1/hall/unit-b/events"]
    assert collector.messages[0][1] == b"its own event"
    assert operator.messages == [] and late.messages == []
    assert b_trigger.messages == [("traceon/s1/hall/unit-b/cmd/trigger", b"the operator's trigger", False)]
    assert a.messages == [], "unit A read another unit's events or trigger"


def test_a_collector_reads_events_and_publishes_nothing(tmp_path, locked):
    fired: list[float] = []
    link, outbox = unit_link(tmp_path, locked.port, UNIT_A, lambda: fired.append(time.monotonic()))
    other = Account(locked.port, "collector-2", "$share/tracers/traceon/+/+/+/events")  # collect --share
    operator = Account(locked.port, "operator", "traceon/+/+/+/status")
    collector = Account(locked.port, "collector-1", "traceon/#")
    for account in (other, operator, collector):
        assert account.ready.wait(10)
    try:
        collector.publish("traceon/s1/door/unit-a/events", "forged event")
        collector.publish("traceon/s1/door/unit-a/cmd/trigger", "go")
        collector.publish("traceon/s1/door/unit-a/status", "offline", retain=True)
        operator.publish("traceon/s1/door/unit-a/events", "the operator's forged event")
        event = sample_event(0)
        outbox.put(event)  # the unit's own event, through its own link: the positive control
        wait_until(lambda: len(other.messages) >= 1, 10, "the unit's event at collector-2")
        wait_until(lambda: len(collector.messages) >= 1, 10, "the unit's event at collector-1")
    finally:
        link.stop()
        outbox.close()
        for account in (other, operator, collector):
            account.close()
    assert [p for _, p, _ in other.messages] == [p for _, p, _ in collector.messages]
    assert len(other.messages) == 1 and event["event_id"].encode() in other.messages[0][1]
    assert fired == [], "a collector's trigger fired a burst"
    assert [p for _, p, _ in operator.messages] in ([b"online"], [b"online", b"offline"])


def test_only_the_operator_triggers_and_a_retained_trigger_is_ignored(tmp_path, locked):
    operator = Account(locked.port, "operator")
    assert operator.ready.wait(10)
    operator.publish("traceon/s1/door/unit-a/cmd/trigger", "left behind", retain=True)
    fired: list[float] = []
    link, outbox = unit_link(tmp_path, locked.port, UNIT_A, lambda: fired.append(time.monotonic()))
    b = Account(locked.port, UNIT_B)
    try:
        assert b.ready.wait(10)
        b.publish("traceon/s1/door/unit-a/cmd/trigger", "from another unit")
        operator.publish("traceon/s1/door/unit-a/cmd/trigger", "now")
        wait_until(lambda: fired, 10, "the operator's trigger at the unit")
        time.sleep(0.5)  # only to show that nothing more arrives: no second (retained or forged) trigger within 0.5 s
    finally:
        link.stop()
        outbox.close()
        operator.close()
        b.close()
    assert len(fired) == 1


def test_a_second_client_with_the_units_client_id_does_not_throw_it_off(tmp_path, locked, caplog):
    caplog.set_level(logging.INFO, "edge.unit.uplink")
    collector = Account(locked.port, "collector-1", "traceon/+/+/+/events")
    assert collector.ready.wait(10)
    link, outbox = unit_link(tmp_path, locked.port, UNIT_A)
    unit_id = link.client._client_id.decode()
    hijackers = [Account(locked.port, who, client_id=unit_id) for who in (UNIT_B, "collector-2", "operator")]
    try:
        assert all(h.ready.wait(10) for h in hijackers)
        outbox.put(sample_event(1))
        wait_until(lambda: collector.messages, 10, "the unit's event at the collector")
        time.sleep(0.5)  # only to show that nothing more happens: no hijacker throws the unit off within 0.5 s
        stayed = link.connected.is_set() and link.last_error == ""
        connects = [r.getMessage() for r in caplog.records if r.getMessage().startswith("connected to")]
    finally:
        link.stop()
        outbox.close()
        collector.close()
        for h in hijackers:
            h.close()
    assert [h.connects[0] for h in hijackers] == ["Success"] * 3  # they got in, under their own names
    assert stayed and len(connects) == 1, f"the unit was thrown off the broker: {connects}, {link.last_error}"
