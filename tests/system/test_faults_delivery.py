"""The unit under faults in delivery: a broker that dies, acknowledgements that race a publish, a broker that
cannot be reached, SIGKILLs, a stop while the broker is down or during a burst, an oversized trigger. Each
scenario counts events committed (the daemon's own log line, written after the commit), delivered, delivered
twice (same id) and lost; lost must be 0 wherever the disk kept them. The disk's faults: test_faults_disk.py;
both print their rows in one table at the end (support.faults, the fixture fault_table in conftest.py).

Everything runs on loopback.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import signal
import threading
import time

import pytest
from support.daemon import DaemonProcess, pending_ids
from support.events import sample_event
from support.faults import received, record
from support.feeder import link_to
from support.mqtt import Subscriber
from support.servers import Broker, free_port, make_certificates, tls_listener
from support.unit_config import faces_folder, unit_config, write_config
from support.wait import wait_until

from edge.core.topics import Topics
from edge.unit import config
from edge.unit.outbox import Outbox
from edge.unit.uplink import BrokerLink

pytestmark = pytest.mark.usefixtures("fault_table")


# --- delivery: the unit's own outbox and broker link ------------------------------------------------------


def test_the_broker_killed_and_restarted_five_times_during_500_events_loses_none(tmp_path, broker):
    subscriber = Subscriber(broker.port, "traceon/+/+/+/events", "fault-tracer")
    outbox = Outbox(tmp_path / "outbox.sqlite", 100_000, 10**9)
    acked: list[dict] = []
    link = link_to(broker.port, outbox, on_delivered=acked.append)
    link.start()
    made = [sample_event(n) for n in range(500)]

    def produce():
        for event in made:
            outbox.put(event)
            time.sleep(0.02)  # pacing, not waiting: 500 events over about 10 s, across the kills

    # the tracer's session must be in the broker's snapshot before the first kill, and back on the broker
    # before the next one: a broker killed while holding events for a tracer not yet reconnected loses what
    # arrived since its last snapshot (mosquitto saves every second here). That is the broker's loss,
    # not the unit's; this test is about the unit.
    subscribed_at = time.time()
    snapshot = broker.conf.parent / "mosquitto.db"
    wait_until(
        lambda: snapshot.exists() and snapshot.stat().st_mtime > subscribed_at + 0.1,
        10,
        "a broker snapshot with the tracer's session in it",
    )
    producer = threading.Thread(target=produce, daemon=True)
    producer.start()
    rng = random.Random(11)
    try:
        for _ in range(5):
            time.sleep(rng.uniform(0.8, 1.6))  # the fault's random moment, not a wait: the kill lands mid-stream
            broker.process.send_signal(signal.SIGKILL)
            broker.process.wait(10)
            time.sleep(rng.uniform(0.2, 1.0))  # the outage's random length, not a wait
            broker.start()
            wait_until(subscriber.client.is_connected, 10, "the tracer back on the restarted broker")
        producer.join(60)

        def missing() -> str:
            gone = {e["event_id"] for e in made} - set(received(subscriber))
            taken = len(gone & {e["event_id"] for e in acked})
            return (
                f"all 500 events at the tracer: {len(gone)} never came, {taken} of them acknowledged by the "
                f"broker; {outbox.depth()} still in the outbox"
            )

        subscriber.wait_for(lambda s: set(received(s)) >= {e["event_id"] for e in made}, 60, missing)
    finally:
        link.stop()
        outbox.close()
        subscriber.close()
    assert (
        record(
            "broker SIGKILLed and restarted 5×, 500 events",
            {e["event_id"] for e in made},
            received(subscriber),
            "the unit's outbox and broker link",
        )
        == 0
    )


def test_acknowledgements_of_other_messages_during_a_publish_never_stall_delivery(tmp_path, broker):
    """paho reports a PUBACK holding its own lock; the link must never hold its lock around a paho call, or
    the `online` status (or any other message) acknowledged while an event is published deadlocks both."""
    subscriber = Subscriber(broker.port, "traceon/+/+/+/events", "ack-tracer")
    outbox = Outbox(tmp_path / "outbox.sqlite", 100_000, 10**9)
    link = link_to(broker.port, outbox)
    made = [sample_event(n) for n in range(800)]
    for event in made:
        outbox.put(event)
    done = threading.Event()

    def other_messages():  # what the network thread does at each connect, as often as it can
        while not done.is_set():
            info = link.client.publish("traceon/s1/door/d1/status", "online", qos=1, retain=True)
            with contextlib.suppress(RuntimeError, ValueError):  # not connected yet
                info.wait_for_publish(1)

    noise = threading.Thread(target=other_messages, daemon=True)
    link.start()
    noise.start()
    try:
        subscriber.wait_for(
            lambda s: len(set(received(s))) >= len(made),
            60,
            lambda: f"all {len(made)} events delivered (it stalled after {len(set(received(subscriber)))})",
        )
    finally:
        done.set()
        noise.join(10)
        stopper = threading.Thread(target=link.stop, daemon=True)
        stopper.start()
        stopper.join(20)
        subscriber.close()
        assert not noise.is_alive() and not stopper.is_alive(), "the broker link deadlocked"


@pytest.mark.parametrize("why", ["nothing listens", "its certificate is from another CA"])
def test_a_broker_that_cannot_be_reached_is_said_at_once_then_not_at_every_retry(tmp_path, caplog, why):
    caplog.set_level(logging.ERROR, "edge.unit.uplink")
    settings = config.MqttConfig(host="127.0.0.1", port=free_port(), keepalive=5)
    server = None
    if why != "nothing listens":
        make_certificates(tmp_path)
        port, lines = tls_listener(tmp_path, require_certificate=False)
        server = Broker(tmp_path, extra=lines)
        server.start()
        (tmp_path / "other").mkdir()
        make_certificates(tmp_path / "other")
        settings = config.MqttConfig(
            host="localhost", port=port, keepalive=5, tls={"ca_file": tmp_path / "other" / "ca.crt"}
        )
    outbox = Outbox(tmp_path / "outbox.sqlite", 100, 10**6)
    link = BrokerLink(settings, Topics("traceon", "s1", "door", "d1"), outbox, dict, lambda: None)
    link.start()
    said = lambda: [r.getMessage() for r in caplog.records if "cannot reach the broker" in r.getMessage()]  # noqa: E731
    try:
        wait_until(said, 10, "the link to say it cannot reach the broker")
        time.sleep(4)  # only to show that nothing more arrives: paho retries after 1 s, 2 s, ...; none says it again
    finally:
        link.stop()
        outbox.close()
        if server:
            server.stop()
    print(f"\n{why}: {len(said())} line(s) in the first seconds: {said()[:1]}")
    assert len(said()) == 1
    assert ("certificate verify failed" in said()[0]) == (why != "nothing listens")


def test_sigkill_at_random_moments_loses_nothing_committed(tmp_path, broker):
    """The daemon is SIGKILLed N times (TRACEON_KILLS, default 20); what it committed comes from its own log."""
    kills = int(os.environ.get("TRACEON_KILLS", "20"))
    path = unit_config(tmp_path, broker.port, interval=0.5)
    subscriber = Subscriber(broker.port, "traceon/+/+/+/events", "tracer-kill")
    unit = DaemonProcess(path, tmp_path / "daemon.log")
    rng = random.Random(20261123)
    pending_at_kill = []
    try:
        for n in range(kills):
            wait_until(lambda n=n: unit.said("running:", n + 1), 60, f"start {n + 1} of the daemon")
            time.sleep(rng.uniform(0.5, 2.5))  # the fault's random moment, not a wait: the kill lands anywhere
            if rng.random() < 0.5:  # a stalled broker: events sit committed but unacknowledged when the kill comes
                broker.pause()
                time.sleep(rng.uniform(0.0, 0.6))  # the stall's random length before the kill, not a wait
            pending_at_kill.append(len(pending_ids(tmp_path / "outbox.sqlite")))
            unit.kill()
            broker.resume()
            with open(unit.log, "a") as log:
                log.write("-- killed --\n")
            unit.start()
        wait_until(lambda: unit.said("running:", kills + 1), 60, "the daemon's last start")
        wait_until(
            lambda: unit.committed() <= set(received(subscriber)),
            90,
            lambda: f"every committed event at the tracer ({len(unit.committed() - set(received(subscriber)))} not)",
        )
        assert unit.stop() == 0
    finally:
        if unit.process.poll() is None:
            unit.kill()
        subscriber.close()
    committed = unit.committed()
    assert committed
    note = f"{sum(1 for p in pending_at_kill if p)} of {kills} kills with events waiting"
    assert record(f"daemon SIGKILLed {kills}× at random moments", committed, received(subscriber), note) == 0


def test_a_stop_while_the_broker_is_down_keeps_every_committed_event(tmp_path, broker):
    path = unit_config(tmp_path, broker.port, interval=0.5)
    subscriber = Subscriber(broker.port, "traceon/+/+/+/events", "tracer-stop")
    broker.stop()
    unit = DaemonProcess(path, tmp_path / "daemon.log")
    wait_until(lambda: len(unit.committed()) >= 5, 60, "5 events committed")
    assert unit.stop() == 0  # SIGTERM with the broker down: the events must stay in the outbox
    committed = unit.committed()
    kept = set(pending_ids(tmp_path / "outbox.sqlite"))
    assert committed <= kept, f"deleted without a PUBACK: {committed - kept}"
    broker.start()
    unit = DaemonProcess(path, tmp_path / "daemon.log")
    try:
        subscriber.wait_for(lambda s: committed <= set(received(s)), 60, "every committed event at the tracer")
    finally:
        unit.stop()
        subscriber.close()
    assert record("SIGTERM while the broker is down, then restart", committed, received(subscriber)) == 0


def test_a_sigterm_during_a_burst_finishes_it_and_delivers_its_event_before_exiting(tmp_path, broker):
    path = write_config(
        tmp_path,
        broker.port,
        "{kind: manual}",
        f"{{kind: images, path: {faces_folder(tmp_path)}, loop: true}}",
        burst="{frames: 8, duration: 4.0, cooldown: 0}",
        upsample=0,
    )
    subscriber = Subscriber(broker.port, "traceon/+/+/+/#", "tracer-burst")
    unit = DaemonProcess(path, tmp_path / "daemon.log")
    try:
        wait_until(lambda: unit.said("running: "), 60, "the daemon to start")
        unit.process.send_signal(signal.SIGUSR1)  # a burst of 4 s begins
        # the stop comes in the middle of it: the daemon takes a trigger at once, and its health report (every
        # second) names the trigger, so when that report comes the burst has run for a second at most
        subscriber.wait_for(lambda s: any(h["last_trigger"] for h in s.health()), 10, "health to name the trigger")
        assert unit.committed() == set()
        assert unit.stop() == 0
        committed = unit.committed()
        assert len(committed) == 1, "the burst under way was not finished"
        subscriber.wait_for(
            lambda s: set(received(s)) >= committed, 10, "its event at the tracer (else it was left for the next start)"
        )
    finally:
        if unit.process.poll() is None:
            unit.kill()
        subscriber.close()
    assert set(received(subscriber)) == committed
    assert pending_ids(tmp_path / "outbox.sqlite") == []


def test_a_trigger_larger_than_a_trigger_needs_never_reaches_the_unit(tmp_path, broker):
    """The unit tells the broker its largest packet (MQTT 5): the broker drops the rest for it."""
    fired: list[float] = []
    outbox = Outbox(tmp_path / "outbox.sqlite", 100, 10**6)
    link = link_to(broker.port, outbox, on_trigger=lambda: fired.append(1))
    link.start()
    sender = Subscriber(broker.port, "traceon/s1/door/d1/status", "trigger-sender")
    try:
        assert link.connected.wait(10)
        wait_until(lambda: sender.messages, 10, "the unit's status at the sender (it is subscribed)")
        # under the broker-wide 64 KiB (config/mosquitto-collect.conf), so only the unit's own limit stops it
        sender.client.publish("traceon/s1/door/d1/cmd/trigger", b"x" * 60_000, qos=1).wait_for_publish(5)
        sender.client.publish("traceon/s1/door/d1/cmd/trigger", b"", qos=1).wait_for_publish(5)
        wait_until(lambda: fired, 10, "the small trigger at the unit")
        time.sleep(0.5)  # only to show that nothing more arrives: no second trigger (a large one would come first)
        still = link.connected.is_set()
    finally:
        link.stop()
        outbox.close()
        sender.close()
    assert fired == [1] and still
