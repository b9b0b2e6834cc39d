"""A window of events in flight: commit order kept, nothing deleted before its PUBACK, across a slow link."""

from __future__ import annotations

import time
import uuid

from support.mqtt import Subscriber
from support.servers import DelayRelay
from support.wait import wait_until

from edge.core.topics import Topics
from edge.unit.config import MqttConfig
from edge.unit.outbox import Outbox
from edge.unit.uplink import BrokerLink

TOPICS = Topics("traceon", "s1", "door", "d1")


def filled(tmp_path, count: int) -> tuple[Outbox, list[str]]:
    outbox = Outbox(tmp_path / "outbox.sqlite", 10_000, 1 << 28)
    ids = [str(uuid.uuid4()) for _ in range(count)]
    for event_id in ids:
        outbox.put({"event_id": event_id, "persons": []})
    return outbox, ids


def link(outbox: Outbox, port: int, window: int, delivered: list) -> BrokerLink:
    settings = MqttConfig(host="127.0.0.1", port=port, in_flight=window, health_every=3600)
    return BrokerLink(settings, TOPICS, outbox, lambda: {}, lambda: None, delivered.append)


def test_a_backlog_across_a_slow_link_arrives_whole_once_and_in_commit_order(tmp_path, broker):
    outbox, ids = filled(tmp_path, 300)
    relay = DelayRelay(broker.port, 0.05)
    subscriber = Subscriber(broker.port, TOPICS.events, "order-watch")
    delivered: list[dict] = []
    unit = link(outbox, relay.port, 20, delivered)
    unit.start()
    try:
        subscriber.wait_for(
            lambda s: len(s.events()) >= 300, 60, lambda: f"300 events at the tracer ({len(subscriber.events())} came)"
        )
        wait_until(lambda: outbox.depth() == 0, 10, "the outbox emptied by the broker's acknowledgements")
    finally:
        unit.stop(flush_seconds=0)
        subscriber.close()
        relay.close()
    assert [e["event_id"] for e in subscriber.events()] == ids
    assert [e["event_id"] for e in delivered] == ids  # deleted in commit order


def test_events_in_flight_stay_in_the_outbox_until_the_broker_acknowledges_them(tmp_path, broker):
    outbox, _ = filled(tmp_path, 0)
    delivered: list[dict] = []
    unit = link(outbox, broker.port, 20, delivered)
    unit.start()
    try:
        assert unit.connected.wait(10)
        broker.pause()  # connected, but nothing is acknowledged
        ids = [str(uuid.uuid4()) for _ in range(50)]
        for event_id in ids:
            outbox.put({"event_id": event_id, "persons": []})
        wait_until(lambda: len(unit._flight) == 20, 10, "a full window of 20 events in flight")
        time.sleep(1)  # only to show that nothing more arrives: no acknowledgement within 1 s from a paused broker
        assert delivered == []
        assert outbox.depth() == 50  # none acknowledged, so none deleted
        broker.resume()
        wait_until(lambda: outbox.depth() == 0, 30, "the outbox emptied once the broker resumed")
    finally:
        broker.resume()
        unit.stop(flush_seconds=0)
    assert [e["event_id"] for e in delivered] == ids


def test_events_the_broker_refuses_stay_in_the_outbox_and_go_once_it_takes_them(tmp_path, monkeypatch):
    """mosquitto answers a publish its ACL forbids with a PUBACK that says "Not authorized": that is not a
    delivery. Before, the unit deleted such events as delivered, and a wrong ACL lost every one."""
    import signal

    from support.servers import Broker

    import edge.unit.uplink

    monkeypatch.setattr(edge.unit.uplink, "REFUSED_RETRY_S", 0.5)
    acl = tmp_path / "acl"
    acl.write_text("topic read #\ntopic write traceon/+/+/+/status\ntopic write traceon/+/+/+/health\n")
    broker = Broker(tmp_path, extra=f"acl_file {acl}\n")
    broker.start()
    outbox, ids = filled(tmp_path, 5)
    subscriber = Subscriber(broker.port, TOPICS.events, "refusal-watch")
    delivered: list[dict] = []
    unit = link(outbox, broker.port, 20, delivered)
    unit.start()
    try:
        wait_until(
            lambda: "Not authorized" in unit.state, 10, lambda: f"the link to say the broker refuses ({unit.state})"
        )
        assert "ACL" in unit.state and "wait in the outbox" in unit.state
        assert outbox.depth() == 5 and delivered == []
        acl.write_text(acl.read_text() + "topic write traceon/+/+/+/events\n")
        broker.process.send_signal(signal.SIGHUP)  # mosquitto reads its ACL again
        wait_until(lambda: outbox.depth() == 0, 20, "the outbox emptied once the ACL lets the events through")
        subscriber.wait_for(lambda s: len(s.events()) == 5, 10, "the 5 events at the tracer")
        assert unit.state == "connected"  # health no longer says the broker refuses
    finally:
        unit.stop(flush_seconds=0)
        subscriber.close()
        broker.stop()
    assert [e["event_id"] for e in delivered] == ids
    assert [e["event_id"] for e in subscriber.events()] == ids
