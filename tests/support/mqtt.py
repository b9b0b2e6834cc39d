"""A test's own MQTT client: it keeps everything a topic filter receives."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable

from support.wait import wait_until


class Subscriber:
    """Collects every message under a topic filter, with a persistent session (QoS 1 survives outages)."""

    def __init__(self, port: int, topic: str = "#", client_id: str = "test-subscriber"):
        import paho.mqtt.client as mqtt

        self.messages: list[tuple[str, bytes, bool]] = []
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
        self.client.reconnect_delay_set(min_delay=0.2, max_delay=1)
        self.client.on_connect = lambda c, u, f, r, p: (c.subscribe(topic, qos=1), None)[1]
        self.client.on_subscribe = lambda *a: self._ready.set()
        self.client.on_message = self._message
        self.client.connect("127.0.0.1", port, keepalive=5)
        self.client.loop_start()
        assert self._ready.wait(10), "the test subscriber could not subscribe"

    def _message(self, client, userdata, message) -> None:
        with self._lock:
            self.messages.append((message.topic, message.payload, message.retain))

    def events(self) -> list[dict]:
        with self._lock:
            return [json.loads(p) for t, p, _ in self.messages if t.endswith("/events")]

    def health(self) -> list[dict]:
        """The health reports received, oldest first."""
        with self._lock:
            return [json.loads(p) for t, p, _ in self.messages if t.endswith("/health")]

    def wait_for(self, condition: Callable[[Subscriber], object], timeout: float, what: str | Callable[[], str]):
        """wait_until(condition(this subscriber), ...): what it has received, polled."""
        return wait_until(lambda: condition(self), timeout, what)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
