"""Exposure notices over MQTT against a real mosquitto: retained per checkpoint, withdrawn to an empty list, and a
clear error when the broker is down, stalled or refusing."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import pytest
from support.mqtt import Subscriber
from support.servers import Broker

from edge.console.notices_out import NoticeNotSent, NoticePublisher
from edge.core.broker import BrokerConfig

HOUR = 3_600_000
DAY0 = 1_767_258_000_000  # 2026-01-01T09:00:00Z


@dataclass
class Notice:  # the fields of edge.console.notices.Notice that a publisher reads
    id: int
    site: str
    checkpoint: str
    from_ms: int
    to_ms: int
    published_ms: int
    withdrawn_ms: int | None = None


def settings(port: int) -> BrokerConfig:
    return BrokerConfig(host="127.0.0.1", port=port)


def retained(port: int, topic: str, client_id: str) -> list[tuple[str, dict, bool]]:
    """What a display connecting now gets at once: the retained message(s) under `topic`."""
    fresh = Subscriber(port, topic, client_id)
    try:
        fresh.wait_for(lambda s: s.messages, 10, f"a retained message on {topic}")
        return [(t, json.loads(p), r) for t, p, r in fresh.messages]
    finally:
        fresh.close()


def test_a_checkpoints_notices_are_retained_and_a_display_connecting_later_gets_them(broker):
    publisher = NoticePublisher(settings(broker.port), "traceon")
    try:
        later = Notice(2, "campus", "door-1", DAY0 + 3 * HOUR, DAY0 + 4 * HOUR, DAY0 + 30 * HOUR)
        first = Notice(1, "campus", "door-1", DAY0, DAY0 + HOUR // 4 * 3, DAY0 + 26 * HOUR)
        gone = Notice(3, "campus", "door-1", DAY0, DAY0 + HOUR, DAY0 + 26 * HOUR, withdrawn_ms=DAY0 + 27 * HOUR)
        publisher.publish_place("campus", "door-1", [later, first, gone])
        publisher.publish_place("campus", "door-2", [])
    finally:
        publisher.close()
    ((topic, body, kept),) = retained(broker.port, "traceon/campus/door-1/notices", "display-1")
    assert topic == "traceon/campus/door-1/notices" and kept
    assert body == {
        "site": "campus",
        "checkpoint": "door-1",
        "notices": [
            {"from": "2026-01-01T09:00:00Z", "to": "2026-01-01T09:45:00Z", "published": "2026-01-02T11:00:00Z"},
            {"from": "2026-01-01T12:00:00Z", "to": "2026-01-01T13:00:00Z", "published": "2026-01-02T15:00:00Z"},
        ],
    }
    assert "fh1:" not in json.dumps(body) and "case" not in json.dumps(body)
    ((_, other, _),) = retained(broker.port, "traceon/campus/door-2/notices", "display-2")
    assert other == {"site": "campus", "checkpoint": "door-2", "notices": []}


def test_withdrawing_the_last_notice_leaves_an_empty_list_retained(broker):
    publisher = NoticePublisher(settings(broker.port), "traceon")
    notice = Notice(1, "campus", "door-1", DAY0, DAY0 + HOUR, DAY0 + 2 * HOUR)
    try:
        publisher.publish_place("campus", "door-1", [notice])
        assert len(retained(broker.port, "traceon/+/+/notices", "display-a")[0][1]["notices"]) == 1
        notice.withdrawn_ms = DAY0 + 3 * HOUR
        publisher.publish_place("campus", "door-1", [notice])
    finally:
        publisher.close()
    assert retained(broker.port, "traceon/+/+/notices", "display-b") == [
        ("traceon/campus/door-1/notices", {"site": "campus", "checkpoint": "door-1", "notices": []}, True)
    ]


def test_a_broker_that_is_down_is_a_clear_error_within_the_wait_and_the_publisher_recovers(tmp_path):
    broker = Broker(tmp_path)  # not started: down from the console's start
    publisher = NoticePublisher(settings(broker.port), "traceon", wait_s=2)
    notice = Notice(1, "campus", "door-1", DAY0, DAY0 + HOUR, DAY0 + 2 * HOUR)
    try:
        started = time.monotonic()
        with pytest.raises(NoticeNotSent) as down:
            publisher.publish_place("campus", "door-1", [notice])
        assert time.monotonic() - started < 10
        assert str(down.value).startswith("the notices of campus/door-1 were not published: cannot reach the broker")
        assert f"127.0.0.1:{broker.port}" in str(down.value)
        broker.start()  # paho reconnects by itself, with backoff
        publisher.wait_s = 30
        publisher.publish_place("campus", "door-1", [notice])
        assert len(retained(broker.port, "traceon/campus/door-1/notices", "display")[0][1]["notices"]) == 1
        broker.stop()  # and lost again while connected
        publisher.wait_s = 2
        with pytest.raises(NoticeNotSent, match=r"were not published: (lost|cannot reach) the broker at 127\.0\.0\.1"):
            publisher.publish_place("campus", "door-1", [])
    finally:
        publisher.close()
        broker.stop()


def test_a_stalled_broker_is_said_once_the_wait_for_its_acknowledgement_ends(broker):
    publisher = NoticePublisher(settings(broker.port), "traceon", wait_s=2)
    try:
        publisher.publish_place("campus", "door-1", [])  # connected
        broker.pause()
        with pytest.raises(NoticeNotSent, match="did not acknowledge them within 2 s"):
            publisher.publish_place("campus", "door-1", [])
    finally:
        broker.resume()
        publisher.close()


def test_a_broker_that_refuses_the_notices_topic_is_a_clear_error(tmp_path):
    acl = tmp_path / "acl"
    acl.write_text("topic read #\n")  # anonymous clients may read, not write
    broker = Broker(tmp_path, extra=f"acl_file {acl}\n")
    broker.start()
    publisher = NoticePublisher(settings(broker.port), "traceon", wait_s=5)
    try:
        with pytest.raises(NoticeNotSent, match=r"the broker refused the notices of campus/door-1 on .*Not authorized"):
            publisher.publish_place("campus", "door-1", [])
    finally:
        publisher.close()
        broker.stop()


def test_a_name_that_would_be_another_topic_is_refused_before_anything_is_sent(broker):
    publisher = NoticePublisher(settings(broker.port), "traceon")
    try:
        for site, checkpoint in (("campus", "#"), ("+", "door-1"), ("campus", "door/1"), ("", "door-1")):
            with pytest.raises(ValueError, match="name a unit can have"):
                publisher.publish_place(site, checkpoint, [])
        stranger = Notice(1, "campus", "door-2", DAY0, DAY0 + HOUR, DAY0 + 2 * HOUR)
        with pytest.raises(ValueError, match="a notice of campus/door-2 among those of campus/door-1"):
            publisher.publish_place("campus", "door-1", [stranger])
    finally:
        publisher.close()
