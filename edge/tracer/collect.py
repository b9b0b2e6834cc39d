"""`traceon-edge collect`: store every unit's events, losing none, refusing what is not an event.

A unit deletes an event once the broker has it, so from then on the broker and this collector hold the
only copy. The collector therefore has a stable identity (a fixed client id) and a persistent MQTT 5
session (clean start off, a session expiry of days): the broker queues events while it is away. It
acknowledges each message only after the transaction that stores it has committed (paho's manual
acks, in the order received), so a collector killed mid-write receives the message again; the event id
makes the second delivery a no-op. Refused messages are acknowledged too (a resend cannot mend them),
each with one counted line. Events over a per-unit limit (limits.py) are set aside in the same
transaction and acknowledged: kept, counted per unit, out of every trace until an operator decides.
"""

from __future__ import annotations

import contextlib
import datetime
import queue
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge.core import broker, topics
from edge.core.broker import BrokerConfig
from edge.core.errors import EX_CONFIG, KeyFileError, TraceonError
from edge.core.shown import shown
from edge.core.spans import span, when
from edge.tracer import intake, key_chain, unit_reports
from edge.tracer.limits import DAY_MS, Limits, Meter, remember, started_ms
from edge.tracer.store import CONFLICT, REPEATED, STORED, Held, Store, StoreError, UnitReport, open_store, redacted

MAX_BATCH = 100  # messages per transaction; also the most the broker may have in flight to us
MAX_PACKET = 1 << 20  # the broker drops larger messages for us instead of sending them (MQTT 5)
LINE = 300  # a log line never grows past this, whatever a sender puts in its topic
FATAL_REFUSALS = {  # CONNACK reasons that retrying cannot mend
    133: "it does not accept this client id",
    134: "bad user name or password",
    135: "not authorised (a wrong password, or its ACL does not let this user in)",
}


@dataclass(frozen=True)
class Options:
    db_url: str
    share: str | None = None
    client_id: str | None = None
    session_expiry_s: int = 7 * 86400
    retention_s: int = 21 * 86400
    retention_text: str = "21d"
    limits: Limits = field(default_factory=Limits)
    key_chain: Path | None = None  # the tracer's chain: retention moves it forward (key_chain.py)


@dataclass(frozen=True)
class Delivery:
    generation: int  # which connection it came on: an ack is only valid on that one
    mid: int
    topic: str
    payload: bytes


@dataclass
class UnitAside:
    """What one unit has had set aside: for its cap, and its line now and then."""

    bytes: int  # payloads it has in the store's held table
    events: int = 0  # set aside (or dropped) by this run
    told: int = 0  # of which the log has told
    told_at: float = -1e9


def now_ms() -> int:
    return round(time.time() * 1000)


def default_client_id(share: str | None) -> str:
    return f"traceon-collect-{socket.gethostname()}" + (f"-{share}" if share else "")


class Collector:
    def __init__(self, settings: BrokerConfig, options: Options, out=sys.stderr):
        self.settings, self.options, self.out = settings, options, out
        self.client_id = options.client_id or default_client_id(options.share)
        self.filter = topics.events_filter(settings.topic_prefix, options.share)
        self.filters = [self.filter, *unit_reports.filters(settings.topic_prefix)]
        self.pacer = unit_reports.Pacer()
        self.inbox: queue.Queue[Delivery] = queue.Queue(maxsize=10 * MAX_BATCH)
        self.stop = threading.Event()
        self.generation = 0
        self.counts = {STORED: 0, REPEATED: 0, CONFLICT: 0, "refused": 0, "set aside": 0, "dropped": 0}
        self.counts |= {"reports": 0, "reports skipped": 0}  # status and health: passed on; over a unit's pace
        self.meter = Meter(options.limits)
        self.held_by_unit: dict[tuple[str, str, str], UnitAside] = {}
        self.exit_code = 0
        self.store: Store | None = None
        self.link = broker.LinkWatch(settings)  # an unreachable broker is said once per outage
        self.had_session = False  # this client id has connected to this store's broker before
        self.client = self._client()

    # --- the MQTT side (paho's thread) ---
    def _client(self) -> mqtt.Client:
        client = broker.client(self.settings, self.client_id, manual_ack=True)
        client.on_connect = self._connected
        client.on_connect_fail = self._connect_failed
        client.on_disconnect = self._disconnected
        client.on_message = self._message
        client.on_subscribe = self._subscribed
        return client

    def say(self, text: str) -> None:
        print(text[:LINE], file=self.out, flush=True)

    def _connected(self, client, userdata, flags, reason, properties) -> None:
        if reason.is_failure:
            why = FATAL_REFUSALS.get(reason.value)
            if why:
                self.say(
                    f"traceon-edge: the broker refused collector {self.client_id}: {why}; check --username, "
                    "--password-file and the broker's ACL"
                )
                self.exit_code = EX_CONFIG
                self.stop.set()
            else:
                self.say(f"the broker refused the connection: {reason}; retrying")
            return
        self.generation += 1
        self.link.connected()
        if not flags.session_present and self.had_session:
            self.say(
                f"warning: the broker kept no session for {self.client_id}: events published while this collector "
                "was away are lost (the broker restarted without persistence, or the session expired)"
            )
        client.subscribe([(f, 1) for f in self.filters])
        self.had_session = True

    def _subscribed(self, client, userdata, mid, reasons, properties) -> None:
        if any(r.is_failure for r in reasons):
            refused = ", ".join(f for f, r in zip(self.filters, reasons, strict=False) if r.is_failure)
            self.say(f"traceon-edge: the broker refused the subscription to {refused}; check its ACL")
            self.exit_code = EX_CONFIG
            self.stop.set()
            return
        self.say(
            f"collecting {self.filter} (and each unit's status and health) from {self.settings.host}:"
            f"{self.settings.port} as {self.client_id} "
            f"(the broker keeps its session {span(self.options.session_expiry_s * 1000)})"
        )

    def _connect_failed(self, client, userdata) -> None:
        why, say = self.link.unreachable()
        if say:
            self.say(f"{why}; retrying")

    def _disconnected(self, client, userdata, flags, reason, properties) -> None:
        if self.stop.is_set():
            return
        if reason.value == 142:  # session taken over
            self.say(
                f"traceon-edge: another client connected with this collector's client id {self.client_id}: give "
                "each collector its own --client-id (collectors in one --share group too)"
            )
            self.exit_code = 1
            self.stop.set()
            return
        self.say(f"lost the broker ({reason}); reconnecting: unacknowledged events will be sent again")
        if self.link.closed():  # mosquitto 2.0 closes a taken-over session without saying why
            self.say(
                f"warning: the broker keeps closing this collector's connection right after it opens: most likely "
                f"another client uses the client id {self.client_id}; give each collector its own --client-id"
            )

    def _message(self, client, userdata, message) -> None:
        try:
            topic = message.topic
        except UnicodeDecodeError:
            topic = "(a topic that is not UTF-8)"
        self.inbox.put(Delivery(self.generation, message.mid, topic, message.payload))

    # --- the writer (main thread) ---
    def run(self) -> int:
        try:
            if self.options.key_chain is not None:  # a chain that cannot be read or moved is said before anything
                key_chain.load(self.options.key_chain)
            self.store = open_store(self.options.db_url, upgrade=True)
        except TraceonError as e:
            self.say(f"traceon-edge: {e}")
            return 1
        with self.store.transaction():
            self.store.set_meta("retention", self.options.retention_text)
            session = f"session:{self.client_id}"  # from now on a missing session at the broker means lost events
            self.had_session = self.store.meta(session) is not None
            if not self.had_session:
                self.store.set_meta(session, datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"))
        self.say(
            f"storing into {redacted(self.options.db_url)} ({self.store.kind}); events older than "
            f"{self.options.retention_text} are deleted"
            + (f", and the key chain {self.options.key_chain} moves past them" if self.options.key_chain else "")
            + f"; each unit may send {self.options.limits.describe()}"
        )
        self._forget_old()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop.set())
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = self.options.session_expiry_s
        properties.ReceiveMaximum = MAX_BATCH
        properties.MaximumPacketSize = MAX_PACKET
        self.client.connect_async(
            self.settings.host, self.settings.port, keepalive=30, clean_start=False, properties=properties
        )
        self.client.loop_start()
        try:
            self._write_loop()
        finally:
            self.client.disconnect()
            self.client.loop_stop()
            c = self.counts
            self.say(
                f"stored {c[STORED]}, already stored {c[REPEATED]}, refused {c['refused']}"
                + (f" (of which {c[CONFLICT]} reused a stored event's id)" if c[CONFLICT] else "")
                + (f", set aside {c['set aside']}" if c["set aside"] else "")
                + (f", dropped {c['dropped']} over the set-aside cap" if c["dropped"] else "")
                + f"; units' status and health: {c['reports']} passed on"
                + (f", {c['reports skipped']} over a unit's pace skipped" if c["reports skipped"] else "")
            )
            self.store.close()
        return self.exit_code

    def _write_loop(self) -> None:
        next_upkeep, next_retention = time.monotonic() + 10, time.monotonic() + 3600
        touched: set[tuple[str, str, int]] = set()
        while not self.stop.is_set():
            batch = self._next_batch()
            if batch:
                touched |= self._write(batch)
            now = time.monotonic()
            try:  # upkeep that fails (a database down or full) is tried again later; events are safe meanwhile
                if not batch:
                    self._write_due()
                if now >= next_upkeep and touched:
                    next_upkeep = now + 10
                    self.store.maintain(touched)
                    touched = set()
                if now >= next_retention:
                    next_retention = now + 3600
                    self._forget_old()
            except Exception as e:
                self.say(f"store upkeep failed ({type(e).__name__}: {e}); trying again later")

    def _next_batch(self) -> list[Delivery]:
        try:
            batch = [self.inbox.get(timeout=0.5)]
        except queue.Empty:
            return []
        while len(batch) < MAX_BATCH:
            try:
                batch.append(self.inbox.get_nowait())
            except queue.Empty:
                break
        return batch

    def _write_due(self) -> None:
        """Status transitions that waited for their unit's turn (unit_reports.Pacer)."""
        due = self.pacer.due(now_ms())
        if due:
            self.store.add([], [], due)
            self.counts["reports"] += len(due)

    def _write(self, batch: list[Delivery]) -> set[tuple[str, str, int]]:
        checked: list[tuple[Delivery, intake.Event | None]] = []
        held: list[Held] = []
        reports = self.pacer.due(now_ms())
        for delivery in batch:
            try:
                unit = topics.unit_of(delivery.topic, self.settings.topic_prefix)
                if unit is not None and unit[3] in unit_reports.KINDS:
                    report = self._report(unit, delivery.payload)
                    reports += [report] if report is not None else []
                    checked.append((delivery, None))
                    continue
                event, aside = self._check(delivery)
            except intake.Refused as e:
                self._refused(delivery, str(e))
                event = aside = None
            except Exception as e:  # a check that breaks must cost one message, never the collector
                self._refused(delivery, f"could not be checked ({type(e).__name__}; a bug: please report it)")
                event = aside = None
            if aside is not None and self._keep(aside):
                held.append(aside)
            checked.append((delivery, event))
        events = [e for _, e in checked if e is not None]
        while not self.stop.is_set():
            try:
                outcomes = iter(self.store.add(events, held, reports))
                break
            except Exception as e:  # a database that is down or full: keep the messages unacknowledged
                self.say(f"cannot store events ({type(e).__name__}: {e}); retrying in 5 s, nothing is acknowledged")
                self.stop.wait(5)
                self._reopen()
        else:
            return set()  # stopping: the broker sends them again to the next run
        self.counts["reports"] += len(reports)
        for delivery, event in checked:
            if event is not None:
                outcome = next(outcomes)
                self.counts[outcome] += 1
                if outcome == CONFLICT:
                    self._refused(delivery, f"event id {event.event_id} is already stored with other content")
            if delivery.generation == self.generation:  # else it comes again on the new connection
                self.client.ack(delivery.mid, 1)
        return {(e.scheme, e.key_id, e.bits) for e in events if e.bits}

    def _report(self, unit: tuple[str, str, str, str], payload: bytes) -> UnitReport | None:
        """A status transition or health report to pass on to the store, or None (no change, or over the
        unit's pace: unit_reports says why a flood costs a size check, or a parse, at most)."""
        site, checkpoint, device, kind = unit
        received = now_ms()
        if kind == "status":
            return self.pacer.status(unit_reports.status((site, checkpoint, device), payload, received))
        if not self.pacer.health_turn((site, checkpoint, device), received):
            self.counts["reports skipped"] += 1
            return None
        return unit_reports.health((site, checkpoint, device), payload, received)

    def _check(self, delivery: Delivery) -> tuple[intake.Event | None, Held | None]:
        """The event to store, or the one to set aside (cheap limits first: a flood costs a JSON parse)."""
        unit, body = intake.receive(delivery.topic, delivery.payload, self.settings.topic_prefix)
        why = self.meter.quick(unit, body)
        if why is None:
            event = intake.accept(unit, body)
            if event.started_ms < (time.time() - self.options.retention_s) * 1000:
                raise intake.Refused(f"older than the retention period ({self.options.retention_text})")
            why = self.meter.over_quota(unit, event.started_ms, len(event.codes), self._stored_rows)
            if why is None:
                return event, None
        persons = body.get("persons")
        started = started_ms(body)
        text = delivery.payload.decode("utf-8")  # receive() parsed it as UTF-8
        return None, Held(unit, delivery.topic, started, len(persons) if isinstance(persons, list) else 0, why, text)

    def _stored_rows(self, unit: tuple[str, str, str], day_start_ms: int) -> int:
        return self.store.unit_rows(unit, day_start_ms, day_start_ms + DAY_MS)

    def _keep(self, held: Held) -> bool:
        """Whether there is room to set this event aside (each unit has a cap); one line per unit now and then."""
        state = remember(self.held_by_unit, held.unit, lambda: UnitAside(self.store.held_bytes(held.unit)))
        room = state.bytes + len(held.payload) <= self.options.limits.held_mb_per_unit * 2**20
        state.events += 1
        if room:
            state.bytes += len(held.payload)
            self.counts["set aside"] += 1
        else:
            self.counts["dropped"] += 1
        now = time.monotonic()
        if now - state.told_at >= 10 or not room:
            since = state.events - state.told
            more = f" ({since - 1:,} more since the last line)" if since > 1 else ""
            full = f"dropped (its {self.options.limits.held_mb_per_unit} MB of set-aside events are full)"
            self.say(
                f"{'set aside' if room else full} an event from {shown(held.unit_text, 80)}, #{state.events:,} from it"
                f"{more}: {held.reason}; see `traceon-edge held`"
            )
            state.told_at, state.told = now, state.events
        return room

    def _refused(self, delivery: Delivery, reason: str) -> None:
        self.counts["refused"] += 1
        self.say(f"refused #{self.counts['refused']} on {shown(delivery.topic, 80)}: {reason}")

    def _reopen(self) -> None:
        with contextlib.suppress(Exception):  # already broken; the new connection is what matters
            self.store.close()
        try:
            self.store = open_store(self.options.db_url, upgrade=True)
        except (TraceonError, StoreError) as e:
            self.say(f"cannot open the store again: {e}")

    def _forget_old(self) -> None:
        cutoff = time.time() - self.options.retention_s
        deleted = self.store.forget_before(round(cutoff * 1000))
        self.meter.forget_days_before(round(cutoff * 1000))
        if deleted:
            self.say(f"deleted {deleted} event(s) that started before {when(round(cutoff * 1000))} UTC")
        if self.options.key_chain is not None:  # read again each time: `forget-keys` may have moved it meanwhile
            try:
                before, after = key_chain.forget(self.options.key_chain, self.options.retention_s)
            except KeyFileError as e:  # collecting goes on; only the erasure waits
                self.say(
                    f"traceon-edge: {e}; sightings older than the retention stay testable from a photo until the "
                    "chain moves (tried again in an hour)"
                )
                return
            if after is not before:
                self.say(key_chain.said(self.options.key_chain, before, after))
