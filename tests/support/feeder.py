"""The event feeder: the unit's own delivery code (durable outbox, broker link, delete after PUBACK), fed with
events by the test instead of a camera."""

from __future__ import annotations

import time
from pathlib import Path

from edge.core.topics import Topics
from edge.unit import config
from edge.unit.outbox import Outbox
from edge.unit.uplink import BrokerLink
from support.wait import wait_until


def link_to(port: int, outbox: Outbox, on_trigger=lambda: None, on_delivered=lambda event: None) -> BrokerLink:
    """Unit s1/door/d1's broker link on a local broker (not started), as the fault tests build it."""
    settings = config.MqttConfig(host="127.0.0.1", port=port, keepalive=5, health_every=3600)
    return BrokerLink(settings, Topics("traceon", "s1", "door", "d1"), outbox, dict, on_trigger, on_delivered)


class Feeder:
    """Unit campus/<checkpoint>/unit-1's outbox and broker link; `delivered` are the events the broker took."""

    def __init__(self, tmp_path: Path, port: int, checkpoint: str = "door"):
        settings = config.MqttConfig(host="127.0.0.1", port=port, keepalive=5, health_every=3600)
        self.outbox = Outbox(tmp_path / f"outbox-{checkpoint}.sqlite", 1_000_000, 10**9)
        self.delivered: list[dict] = []
        topics = Topics("traceon", "campus", checkpoint, "unit-1")
        self.link = BrokerLink(settings, topics, self.outbox, dict, lambda: None, self.delivered.append)
        self.link.start()

    def publish(self, batch: list[dict], per_second: float | None = None) -> None:
        for event in batch:
            self.outbox.put(event)
            if per_second:
                time.sleep(1 / per_second)  # pacing, not waiting: the events spread over time, as units send them

    def wait_delivered(self, count: int, timeout: float = 60) -> None:
        wait_until(
            lambda: len(self.delivered) >= count,
            timeout,
            lambda: f"the broker to take {count} events (it took {len(self.delivered)})",
        )

    def stop(self) -> None:
        self.link.stop()
