"""The broker link: one publisher empties the outbox in order, each event deleted only after its PUBACK.

paho-mqtt 2 with VERSION2 callbacks, QoS 1, optional TLS / mutual TLS, a retained `status` topic with
`offline` as the last will, a retained periodic `health` message, and the `cmd/trigger` subscription.
paho reconnects with backoff by itself and re-sends an unacknowledged message after reconnecting, so
the publisher keeps waiting for the same message rather than sending a second copy; only a restart of
the process sends it again (from the outbox, with its original id).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable

import paho.mqtt.client as mqtt

from edge.broker import secure
from edge.config import Mqtt
from edge.outbox import Outbox, OutboxError
from edge.topics import Topics

log = logging.getLogger(__name__)


class BrokerLink:
    def __init__(
        self,
        settings: Mqtt,
        topics: Topics,
        outbox: Outbox,
        health: Callable[[], dict],
        on_trigger: Callable[[], None],
        on_delivered: Callable[[dict], None] = lambda event: None,
    ):
        self.settings, self.topics, self.outbox = settings, topics, outbox
        self._health, self._on_trigger, self._on_delivered = health, on_trigger, on_delivered
        self._acked: dict[int, threading.Event] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.connected = threading.Event()
        self.last_error = ""
        client_id = settings.client_id or f"traceon-{topics.site}-{topics.checkpoint}-{topics.device}"
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.client.will_set(topics.status, "offline", qos=1, retain=True)
        secure(self.client, settings)
        self.client.on_connect = self._connected
        self.client.on_disconnect = self._disconnected
        self.client.on_publish = self._published
        self.client.on_message = self._message
        self._thread = threading.Thread(target=self._publish_loop, name="mqtt-publisher", daemon=True)

    # --- paho callbacks (paho's network thread) ---
    def _connected(self, client, userdata, flags, reason, properties) -> None:
        if reason.is_failure:
            self.last_error = f"broker refused the connection: {reason}"
            log.error("%s", self.last_error)
            return
        log.info("connected to %s:%d", self.settings.host, self.settings.port)
        self.last_error = ""
        client.publish(self.topics.status, "online", qos=1, retain=True)
        client.subscribe(self.topics.trigger, qos=1)
        self.connected.set()

    def _disconnected(self, client, userdata, flags, reason, properties) -> None:
        self.connected.clear()
        if not self._stop.is_set():
            self.last_error = f"lost the broker: {reason}"
            log.warning("%s; reconnecting with backoff, events wait in the outbox", self.last_error)

    def _published(self, client, userdata, mid, reason, properties) -> None:
        with self._lock:
            done = self._acked.get(mid)
        if done:
            done.set()

    def _message(self, client, userdata, message) -> None:
        if message.topic == self.topics.trigger:
            self._on_trigger()

    # --- the publisher thread ---
    def start(self) -> None:
        self.client.connect_async(self.settings.host, self.settings.port, keepalive=self.settings.keepalive)
        self.client.loop_start()
        self._thread.start()

    def _publish_loop(self) -> None:
        next_health = 0.0
        while not self._stop.is_set():
            if self.connected.is_set() and time.monotonic() >= next_health:
                self.publish_health()
                next_health = time.monotonic() + self.settings.health_every
            try:
                item = self.outbox.oldest()
            except OutboxError as e:
                log.error("%s", e)
                self._stop.wait(5)
                continue
            if item is None:
                self.outbox.wait(min(1.0, max(0.05, next_health - time.monotonic())))
                continue
            event_id, body = item
            if self._deliver(body):
                try:
                    self.outbox.delete(event_id)
                except OutboxError as e:
                    log.error("%s (the event may be sent twice, with the same id)", e)
                self._on_delivered(json.loads(body))

    def _deliver(self, body: str) -> bool:
        """Publish one event and wait for its PUBACK, across reconnects; False only when stopping."""
        done = threading.Event()
        with self._lock:
            info = self.client.publish(self.topics.events, body, qos=1)
            self._acked[info.mid] = done
        try:
            while not done.wait(0.2):
                if self._stop.is_set():
                    return False
            return True
        finally:
            with self._lock:
                self._acked.pop(info.mid, None)

    def publish_health(self) -> None:
        try:
            self.client.publish(self.topics.health, json.dumps(self._health()), qos=1, retain=True)
        except Exception as e:  # health is best effort; the next one follows
            log.warning("could not publish health: %s", e)

    def stop(self, flush_seconds: float = 5.0) -> None:
        """Give the outbox a moment to drain, say `offline`, disconnect. Safe to call twice."""
        if self._stop.is_set():
            return
        deadline = time.monotonic() + flush_seconds
        while self.connected.is_set() and self.outbox.depth() and time.monotonic() < deadline:
            time.sleep(0.05)
        self._stop.set()
        self.outbox.wake()
        if self._thread.is_alive():
            self._thread.join(timeout=2)
        if self.connected.is_set():
            self.client.publish(self.topics.status, "offline", qos=1, retain=True).wait_for_publish(timeout=2)
        self.client.disconnect()
        self.client.loop_stop()
