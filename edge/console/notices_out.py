"""Exposure notices out over MQTT: each checkpoint's current notices, retained, for door displays and websites.

A notice says a place and a time ("checkpoint C, 10:00–10:45"), never who: the message holds the site, the
checkpoint and each notice's from, to and publication time, and no FaceHash or case id. It is retained at
`<prefix>/<site>/<checkpoint>/notices`, so a display that connects later gets the current list at once; a place
whose last notice is withdrawn gets an empty list. The publisher connects through the project's one client factory
(TLS, credentials, reconnect with backoff) and waits for the broker's PUBACK: a notice the broker did not take is
said to the tracer at once, and stays stored in the console's database.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Protocol

from edge.core import broker
from edge.core.broker import BrokerConfig
from edge.core.errors import TraceonError
from edge.core.topics import UNIT_NAME

WAIT_S = 5.0  # how long a tracer's page waits for the broker before it says the broker is unreachable


class NoticeNotSent(TraceonError, RuntimeError):
    """The broker did not take a checkpoint's notices (down, stalled, or refusing them); they stay stored."""


class Notice(Protocol):
    """What is published of an edge.console.notices.Notice."""

    site: str
    checkpoint: str
    from_ms: int
    to_ms: int
    published_ms: int
    withdrawn_ms: int | None


def topic(prefix: str, site: str, checkpoint: str) -> str:
    for what, name in (("site", site), ("checkpoint", checkpoint)):
        if not isinstance(name, str) or not UNIT_NAME.fullmatch(name):  # '+', '#' or '/' would be another topic
            raise ValueError(f"not a {what} name a unit can have: {name!r:.80}")
    return f"{prefix}/{site}/{checkpoint}/notices"


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def payload(site: str, checkpoint: str, notices: Iterable[Notice]) -> bytes:
    """The retained message: the place's notices not withdrawn, earliest first, with ISO 8601 UTC times."""
    current = []
    for notice in notices:
        if (notice.site, notice.checkpoint) != (site, checkpoint):
            raise ValueError(f"a notice of {notice.site}/{notice.checkpoint} among those of {site}/{checkpoint}")
        if notice.withdrawn_ms is None:
            current.append(notice)
    current.sort(key=lambda n: (n.from_ms, n.to_ms, n.published_ms))
    listed = [{"from": _iso(n.from_ms), "to": _iso(n.to_ms), "published": _iso(n.published_ms)} for n in current]
    return json.dumps({"site": site, "checkpoint": checkpoint, "notices": listed}).encode()


class NoticePublisher:
    """Publishes each checkpoint's current notices, retained at QoS 1; one connection for the console's life."""

    def __init__(self, settings: BrokerConfig, prefix: str | None = None, *, wait_s: float = WAIT_S):
        self.settings, self.prefix, self.wait_s = settings, prefix or settings.topic_prefix, wait_s
        self._connected = threading.Event()
        self._why = "not connected yet"
        self._link = broker.LinkWatch(settings)
        self._acks: dict[int, str] = {}  # message id → "" (taken) or the broker's refusal
        self._acked = threading.Condition()
        self._one_at_a_time = threading.Lock()  # a place's publishes reach the broker in the order they were asked
        # a random part: nobody can guess the id and throw the console off the broker by reusing it
        self.client = broker.client(settings, f"traceon-console-{secrets.token_hex(4)}")
        self.client.on_connect = self._on_connect
        self.client.on_connect_fail = self._on_connect_fail
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self.client.suppress_exceptions = True
        self.client.connect_async(settings.host, settings.port, keepalive=30)
        self.client.loop_start()

    # --- paho's network thread ---
    def _on_connect(self, client, userdata, flags, reason, properties) -> None:
        if reason.is_failure:
            self._why = f"the broker at {self._link.where} refused the console's connection: {reason}"
            return
        self._link.connected()
        self._connected.set()

    def _on_connect_fail(self, client, userdata) -> None:
        self._why, _ = self._link.unreachable()

    def _on_disconnect(self, client, userdata, flags, reason, properties) -> None:
        self._connected.clear()
        self._why = f"lost the broker at {self._link.where}: {reason}"

    def _on_publish(self, client, userdata, mid, reason, properties) -> None:
        with self._acked:
            self._acks[mid] = str(reason) if reason.is_failure else ""  # e.g. "Not authorized": the broker's ACL
            self._acked.notify_all()

    # --- the console's threads ---
    def publish_place(self, site: str, checkpoint: str, notices: list[Notice]) -> None:
        """Publish the current notices of one checkpoint and wait for the broker's PUBACK.

        Raises NoticeNotSent, saying why, when the broker cannot be reached or does not acknowledge within
        `wait_s`, or refuses the message. A broker that was unreachable gets nothing later; one that took the
        message but acknowledged it late gets it again from paho on reconnecting, in order, before any newer
        one. Either way the next change to that checkpoint's notices publishes its whole current list."""
        where, body = topic(self.prefix, site, checkpoint), payload(site, checkpoint, notices)
        deadline = time.monotonic() + self.wait_s
        with self._one_at_a_time:
            if not self._connected.wait(self.wait_s):
                raise NoticeNotSent(f"the notices of {site}/{checkpoint} were not published: {self._why}")
            sent = self.client.publish(where, body, qos=1, retain=True)
            with self._acked:
                acked = self._acked.wait_for(lambda: sent.mid in self._acks, max(0.0, deadline - time.monotonic()))
                refusal = self._acks.pop(sent.mid, "")
            if not acked:
                raise NoticeNotSent(
                    f"the notices of {site}/{checkpoint} were not published: the broker at {self._link.where} did "
                    f"not acknowledge them within {self.wait_s:g} s"
                )
            if refusal:
                raise NoticeNotSent(f"the broker refused the notices of {site}/{checkpoint} on {where}: {refusal}")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
