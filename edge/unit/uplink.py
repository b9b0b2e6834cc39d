"""The broker link: one publisher empties the outbox in order, each event deleted only after its PUBACK.

Up to `mqtt.in_flight` events are published before the oldest is acknowledged, so a backlog drains at a
window per round trip rather than an event per round trip; deletes still follow commit order.

paho-mqtt 2 with VERSION2 callbacks, MQTT 5, QoS 1, optional TLS / mutual TLS, a retained `status` topic
with `offline` as the last will, a retained periodic `health` message, and the `cmd/trigger`
subscription. paho reconnects with backoff by itself and re-sends an unacknowledged message after
reconnecting, so the publisher keeps waiting for the same messages rather than sending second copies;
only a restart of the process sends it again (from the outbox, with its original id).

Anyone on the broker may be hostile: a retained trigger is ignored (it would fire at every reconnect),
the broker is told not to send this unit anything larger than a trigger needs, and the default client
id carries a random part, so that nobody can guess it and throw the unit off the broker.
"""

from __future__ import annotations

import collections
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from edge.core import broker, events
from edge.core.topics import Topics
from edge.unit.config import MqttConfig
from edge.unit.outbox import Outbox

log = logging.getLogger(__name__)

MAX_INCOMING = 4096  # bytes: the broker drops anything larger for us (a trigger needs none)
SAY_AGAIN_S = 300  # an unreachable broker is said when it happens and then every 5 minutes
REFUSED_RETRY_S = 30.0  # a broker that refuses events (its ACL, a quota) is tried again this often


@dataclass(frozen=True)
class InFlight:
    event_id: str
    body: str
    mid: int
    done: threading.Event  # set by the PUBACK


class BrokerLink:
    def __init__(
        self,
        settings: MqttConfig,
        topics: Topics,
        outbox: Outbox,
        health: Callable[[], dict],
        on_trigger: Callable[[], None],
        on_delivered: Callable[[dict], None] = lambda event: None,
        on_health: Callable[[dict], None] = lambda report: None,
    ):
        self.settings, self.topics, self.outbox = settings, topics, outbox
        self._health, self._on_trigger, self._on_delivered = health, on_trigger, on_delivered
        self._on_health = on_health
        self._health_sent = False  # on this connection
        self._unacked: dict[int, threading.Event] = {}  # message id -> set by its PUBACK
        self._flight: collections.deque[InFlight] = collections.deque()  # published, oldest first
        self._early: dict[int, str] = {}  # message ids acknowledged with no one waiting yet: their refusal, or ""
        self._refused: dict[int, str] = {}  # message ids the broker answered with a failure, and why
        self.refusing = ""  # why the broker refuses this unit's events now ("" when it takes them)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.connected = threading.Event()
        self.last_error = ""
        self.ignored_retained = 0
        self._link = broker.LinkWatch(settings, say_again_s=SAY_AGAIN_S)
        client_id = settings.client_id or (
            f"traceon-{topics.site}-{topics.checkpoint}-{topics.device}-{secrets.token_hex(3)}"
        )
        self.client = broker.client(settings, client_id)
        self.client.max_queued_messages_set(0)
        self.client.max_inflight_messages_set(settings.in_flight + 2)  # health and status fly beside the events
        self.client.will_set(topics.status, "offline", qos=1, retain=True)
        self.client.on_connect = self._connected
        self.client.on_connect_fail = self._connect_failed
        self.client.on_disconnect = self._disconnected
        self.client.on_publish = self._published
        self.client.on_message = self._message
        self.client.suppress_exceptions = True  # a callback's bug is logged by paho, not fatal to its network loop
        self._thread = threading.Thread(target=self._publish_loop, name="mqtt-publisher", daemon=True)

    # --- paho callbacks (paho's network thread) ---
    def _connected(self, client, userdata, flags, reason, properties) -> None:
        if reason.is_failure:
            self.last_error = f"broker refused the connection: {reason}"
            log.error("%s", self.last_error)
            return
        log.info("connected to %s:%d", self.settings.host, self.settings.port)
        self.last_error = ""
        self._link.connected()
        client.publish(self.topics.status, "online", qos=1, retain=True)
        # retainHandling 2: a retained trigger is not sent on subscribe (it would fire at every reconnect)
        client.subscribe(self.topics.trigger, options=SubscribeOptions(qos=1, retainHandling=2))
        self._health_sent = False
        self.connected.set()

    def _connect_failed(self, client, userdata) -> None:
        """paho could not connect (refused, unreachable, a failed TLS handshake): say why, now and then."""
        self.last_error, say = self._link.unreachable()
        if say:
            log.error("%s; retrying with backoff, events wait in the outbox", self.last_error)

    def _disconnected(self, client, userdata, flags, reason, properties) -> None:
        self.connected.clear()
        if not self._stop.is_set():
            self.last_error = f"lost the broker: {reason}"
            log.warning("%s; reconnecting with backoff, events wait in the outbox", self.last_error)
            if self._link.closed():
                log.error(
                    "the broker keeps closing this unit's connection right after it opens: most likely another "
                    "client uses its client id (set mqtt.client_id to something unique, and see docs/BROKER.md)"
                )

    def _published(self, client, userdata, mid, reason, properties) -> None:
        # paho calls this holding its own message lock, so _lock is never held around a paho call
        refusal = str(reason) if reason.is_failure else ""  # e.g. "Not authorized": mosquitto's ACL said no
        with self._lock:
            done = self._unacked.get(mid)
            if done is None:
                self._early[mid] = refusal  # acknowledged before _publish could register it (or not an event)
            elif refusal:
                self._refused[mid] = refusal
        if done:
            done.set()

    def _message(self, client, userdata, message) -> None:
        if message.topic != self.topics.trigger:
            return
        if message.retain:  # left on the broker by someone earlier: not a request made now
            self.ignored_retained += 1
            log.warning("ignored a retained message on %s: a trigger must be sent, not left", message.topic)
            return
        self._on_trigger()

    # --- the publisher thread ---
    def start(self) -> None:
        properties = Properties(PacketTypes.CONNECT)
        properties.MaximumPacketSize = MAX_INCOMING
        self.client.connect_async(
            self.settings.host, self.settings.port, keepalive=self.settings.keepalive, properties=properties
        )
        self.client.loop_start()
        self._thread.start()

    @property
    def state(self) -> str:
        """For health: connected, or why not (or why the broker refuses what it is sent)."""
        if self.connected.is_set():
            return self.refusing or "connected"
        return self.last_error or "connecting"

    @property
    def alive(self) -> bool:
        """Both threads run: paho's network loop and the publisher (the watchdog is fed only then)."""
        network = getattr(self.client, "_thread", None)
        return self._thread.is_alive() and network is not None and network.is_alive()

    def _publish_loop(self) -> None:
        next_health, failing = 0.0, ""
        while not self._stop.is_set():
            try:  # nothing may end this thread but a stop: it is the unit's only way out
                if time.monotonic() >= next_health or (self.connected.is_set() and not self._health_sent):
                    self.report_health()
                    next_health = time.monotonic() + self.settings.health_every
                self._deliver_window(next_health)
                failing = ""
            except Exception as e:
                if str(e) != failing:
                    log.exception("the publisher hit a problem (it goes on in 5 s): %s", e)
                failing = str(e)
                self._stop.wait(5)

    def _deliver_window(self, next_health: float) -> None:
        """Keep up to `in_flight` events published; delete each, in commit order, only after its PUBACK."""
        room = self.settings.in_flight - len(self._flight)
        if room > 0:
            for event_id, body in self.outbox.oldest_few(room, {f.event_id for f in self._flight}):
                self._flight.append(self._publish(event_id, body))
        if not self._flight:
            self.outbox.wait(min(1.0, max(0.05, next_health - time.monotonic())))
            return
        if not self._flight[0].done.wait(0.2):  # across reconnects: paho sends it again
            return
        while self._flight and self._flight[0].done.is_set():
            sent = self._flight.popleft()
            with self._lock:
                self._unacked.pop(sent.mid, None)
                refusal = self._refused.pop(sent.mid, None)
            if refusal:
                self._keep_refused(refusal)
                return
            self.refusing = ""
            self.outbox.delete(sent.event_id)  # if the disk refuses, the outbox keeps it from being sent again
            self._on_delivered(json.loads(sent.body))

    def _keep_refused(self, refusal: str) -> None:
        """A PUBACK with a failure is not a delivery: the event stays in the outbox, and the window goes again
        later, in order (what the broker took meanwhile comes twice, with its id)."""
        with self._lock:
            for sent in self._flight:
                self._unacked.pop(sent.mid, None)
                self._refused.pop(sent.mid, None)
        self._flight.clear()
        said = self.refusing
        self.refusing = (
            f"connected, but the broker refuses this unit's events on {self.topics.events} ({refusal}): they "
            f"wait in the outbox and go again every {REFUSED_RETRY_S:.0f} s. Check that the broker's ACL lets "
            "this unit's account publish there (docs/BROKER.md)"
        )
        if self.refusing != said:
            log.error("%s", self.refusing)
        self._stop.wait(REFUSED_RETRY_S)

    def _publish(self, event_id: str, body: str) -> InFlight:
        done = threading.Event()
        with self._lock:
            self._early.clear()  # earlier events are registered already: what is here is not theirs
        info = self.client.publish(self.topics.events, body, qos=1)
        with self._lock:
            if info.mid in self._early:
                if refusal := self._early.pop(info.mid):
                    self._refused[info.mid] = refusal
                done.set()
            self._unacked[info.mid] = done
        return InFlight(event_id, body, info.mid, done)

    def report_health(self) -> None:
        """The health report, only if it matches edge/health.schema.json (nothing else may leave the unit):
        kept locally, and published when connected (once per connection even if it fails: the next follows)."""
        self._health_sent = self.connected.is_set()
        try:
            report = events.validate(self._health(), "health")
            self._on_health(report)
            if self.connected.is_set():
                self.client.publish(self.topics.health, json.dumps(report), qos=1, retain=True)
        except Exception as e:  # health is best effort; the next one follows
            log.warning("could not report health: %s", e)

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
