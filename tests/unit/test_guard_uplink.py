"""Guard tests (issue 18, item 8): a retained trigger never fires the unit, and each of its two guards holds
on its own. A trigger left retained on the broker would fire at every reconnect, so the unit subscribes
with retain handling 2 (the broker sends it nothing retained), and should a broker send one anyway, the
link's message handler drops any message with the retain flag. Either guard removed alone passed every
test before: one test per guard.
"""

from __future__ import annotations

import threading

import paho.mqtt.client as mqtt
from support.mqtt import Subscriber
from support.servers import free_port
from support.wait import wait_until

from edge.core.topics import Topics
from edge.unit import config
from edge.unit.outbox import Outbox
from edge.unit.uplink import BrokerLink

TOPICS = Topics("traceon", "s1", "door", "d1")


def test_a_retained_trigger_on_the_broker_is_never_delivered_to_the_unit(tmp_path, broker):
    """Guard 1, the subscription: the broker hands the unit only the trigger sent after it subscribed."""
    sender = Subscriber(broker.port, TOPICS.trigger, "guard-trigger-sender")
    outbox = Outbox(tmp_path / "outbox.sqlite", 100, 10**6)
    fired: list[int] = []
    link = BrokerLink(
        config.MqttConfig(host="127.0.0.1", port=broker.port, keepalive=5, health_every=3600),
        TOPICS,
        outbox,
        dict,
        lambda: fired.append(1),
    )
    delivered: list[tuple[str, bytes, bool]] = []  # everything the broker hands the unit's client
    handler = link.client.on_message

    def spy(client, userdata, message) -> None:
        delivered.append((message.topic, message.payload, message.retain))
        handler(client, userdata, message)

    link.client.on_message = spy
    subscribed = threading.Event()
    link.client.on_subscribe = lambda *args: subscribed.set()
    try:
        sender.client.publish(TOPICS.trigger, b"left behind", qos=1, retain=True).wait_for_publish(5)
        checker = Subscriber(broker.port, TOPICS.trigger, "guard-trigger-checker")  # a plain subscriber gets it
        wait_until(lambda: (TOPICS.trigger, b"left behind", True) in checker.messages, 10, "the trigger, retained")
        checker.close()
        link.start()
        assert subscribed.wait(10), "the unit never subscribed"
        # The broker sends what is retained right after the SUBACK, so anything retained for the unit comes
        # before this trigger, sent once the unit has subscribed: when it fires, the retained one had its turn.
        sender.client.publish(TOPICS.trigger, b"now", qos=1).wait_for_publish(5)
        wait_until(lambda: fired, 10, "the trigger sent now to fire")
    finally:
        link.stop()
        outbox.close()
        sender.close()
    assert delivered == [(TOPICS.trigger, b"now", False)]
    assert fired == [1] and link.ignored_retained == 0


def test_a_message_with_the_retain_flag_handed_to_the_link_fires_no_trigger(tmp_path):
    """Guard 2, the handler: a broker that sends a retained trigger anyway is not obeyed."""
    outbox = Outbox(tmp_path / "outbox.sqlite", 100, 10**6)
    fired: list[int] = []
    link = BrokerLink(
        config.MqttConfig(host="127.0.0.1", port=free_port(), keepalive=5),
        TOPICS,
        outbox,
        dict,
        lambda: fired.append(1),
    )

    def trigger(retain: bool) -> mqtt.MQTTMessage:
        message = mqtt.MQTTMessage(mid=1, topic=TOPICS.trigger.encode())
        message.payload, message.retain = b"1", retain
        return message

    try:
        link._message(link.client, None, trigger(retain=True))
        assert fired == [] and link.ignored_retained == 1
        link._message(link.client, None, trigger(retain=False))  # the same trigger, sent now: it fires
        assert fired == [1] and link.ignored_retained == 1
    finally:
        outbox.close()
