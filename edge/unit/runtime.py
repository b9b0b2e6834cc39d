"""One configuration running: its trigger and camera, bursts captured on the main thread, a vision thread that
turns each burst into an event committed to the outbox, and the broker link whose publisher empties it.
edge.unit.daemon builds a Runtime from each config, and a new one on reload.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from dataclasses import dataclass, field

from edge.core import health_file
from edge.core.topics import Topics
from edge.unit import health_report, sighting
from edge.unit.clock import SystemClock, mark
from edge.unit.config import Config
from edge.unit.keys import UnitKeys
from edge.unit.persons import TrustRules, group
from edge.unit.triggers import IntervalTimer, MotionDetector, PirSensor, TriggerInbox
from edge.unit.vision import FacePipeline, VisionSettings
from edge.unit.vision.pipeline import BurstFaces

log = logging.getLogger("traceon-edge")


@dataclass
class Burst:
    trigger: str
    started: float  # wall time: one reading of the clock, the rest measured on the monotonic clock
    ended: float
    started_mono: float
    clock: str  # edge.clock.mark(): whether the wall clock was synchronised
    faces: BurstFaces = field(repr=False)  # its frames, and their faces being found while the burst is taken


def frames_follow_on(cfg: Config) -> bool:
    """A camera or a recording: each frame follows the last. A folder of photos holds unrelated pictures, where
    a face's place in one says nothing of the next: each is searched whole, and no box continues a track."""
    return cfg.source.kind != "images"


class Runtime:
    """Everything one configuration builds; closed as a whole on reload or stop."""

    def __init__(self, cfg: Config, fingerprint: str, inbox: TriggerInbox, pin_factory, on_event, clock, parts):
        """`parts`: an edge.unit.daemon.Parts, what each part is made with; `clock`: None for the system's."""
        self.cfg, self.fingerprint, self.inbox = cfg, fingerprint, inbox
        self.clock = clock or SystemClock()
        self._stack = contextlib.ExitStack()
        self.stats = {"bursts": 0, "bursts_dropped_busy": 0, "events_failed": 0, "restamped": 0}
        self.last_event: dict | None = None
        self.told_ended = False
        self.started = time.time()
        try:
            v = cfg.vision
            settings = VisionSettings.from_config(v, frames_follow_on(cfg))
            self.pipeline = FacePipeline(settings, detector=parts.detector)
            self._stack.callback(self.pipeline.close)
            f = cfg.facehash
            self.keys = UnitKeys(f.key_file, f.scheme, f.bits)
            self.keys.before_move = self._restamp_waiting
            self.rules = TrustRules(min_face_size=v.min_face_size, continuity=frames_follow_on(cfg))
            self.identity = sighting.Identity(
                cfg.unit.site, cfg.unit.checkpoint, cfg.unit.device, self.pipeline.files.model_id
            )
            o = cfg.outbox
            self.outbox = parts.outbox(cfg)
            self._stack.callback(self.outbox.close)
            self._stack.enter_context(health_file.running_mark(o.path))
            self.outbox.hold_unsynchronized(self.clock, cfg.clock.hold_unsynchronized)
            self.outbox.rekey_restamped(self.keys.rekey_restamped)
            self.synchronized = None
            self.check_clock()
            self.camera = parts.camera(cfg.source)
            self._stack.callback(self.camera.close)
            self.motion = MotionDetector(cfg.trigger.changed) if cfg.trigger.kind == "motion" else None
            if cfg.trigger.kind == "pir":
                self._stack.callback(PirSensor(cfg.trigger, inbox, pin_factory).close)
            elif cfg.trigger.kind == "interval":
                self._stack.callback(IntervalTimer(cfg.trigger, inbox).close)
            topics = Topics(cfg.mqtt.topic_prefix, cfg.unit.site, cfg.unit.checkpoint, cfg.unit.device)
            self.report_file = health_report.ReportFile(health_file.path_beside(o.path))
            self.link = parts.link(
                cfg.mqtt,
                topics,
                self.outbox,
                self.health,
                lambda: inbox.fire("manual"),
                on_event,
                self.report_file.keep,
            )
            self._stack.callback(lambda: self.report_file.keep({**self.health(), "state": "stopped"}))
            self._stack.callback(self.link.stop)  # after vision (LIFO): the last burst's event goes out first
            self._bursts: queue.Queue[Burst | None] = queue.Queue(maxsize=cfg.burst.queue)
            self._vision = threading.Thread(target=self._vision_loop, name="vision", daemon=True)
            self._vision.start()
            self._stack.callback(self._stop_vision)
            self.link.start()
        except BaseException:
            self._stack.close()
            raise

    @property
    def healthy(self) -> bool:
        """Every thread runs: vision, the publisher and paho's network loop (the watchdog is fed only then)."""
        return self._vision.is_alive() and self.link.alive

    @property
    def vision_alive(self) -> bool:
        """The vision thread runs (it turns each burst into an event)."""
        return self._vision.is_alive()

    @property
    def bursts_waiting(self) -> int:
        """Bursts captured and not yet taken by vision."""
        return self._bursts.qsize()

    def health(self) -> dict:
        """The health report now (edge.unit.health_report), for the broker link and the file beside the outbox."""
        return health_report.build(self)

    @property
    def hasher(self):
        """The hasher of the key the unit's key file holds now."""
        return self.keys.hasher

    def check_clock(self) -> None:
        """When the clock becomes synchronised, events still waiting get their times from the monotonic clock; a
        synchronised clock past an epoch boundary (and its grace time) moves the key file forward."""
        synchronized = self.clock.synchronized()
        with self.keys.lock:
            if synchronized and not self.synchronized:
                self._restamp_waiting()
            elif synchronized is False and self.synchronized is not False:
                log.warning("the system clock is not synchronised: events are marked so until it is")
            self.synchronized = synchronized
            # after the re-stamp above: the waiting events were re-keyed from the key the file held until now
            self.keys.catch_up(self.clock.wall(), synchronized is True)

    def _restamp_waiting(self) -> bool:
        """Events of this boot waiting with unsynchronised times get them from the monotonic clock, and their
        FaceHashes the key of the epoch they now fall in. It must run before the key file moves past the key they
        were hashed with (edge.unit.keys calls it first): that key is gone after. False if the clock is not
        synchronised now."""
        if not self.clock.synchronized():
            return False
        rekeyed = self.keys.rekeyed
        fixed = self.outbox.restamp(self.clock.wall(), self.clock.mono(), self.clock.boot)
        if fixed:
            self.stats["restamped"] += fixed
            log.warning(
                "the system clock is synchronised now: re-stamped %d waiting event(s), %d of them re-keyed into "
                "the epoch they fall in",
                fixed,
                self.keys.rekeyed - rekeyed,
            )
        return True

    # --- capture (main thread) ---
    def poll_motion(self) -> None:
        if self.motion is not None:
            frame = self.camera.read()
            if frame is not None and self.motion.moved(frame):
                self.inbox.fire("motion")

    def capture(self, trigger: str, fired_mono: float) -> None:
        b = self.cfg.burst
        interval = b.duration / b.frames
        stepped = self.cfg.source.kind == "video" and not self.cfg.source.realtime
        wall, mono, synchronized = self.clock.wall(), self.clock.mono(), self.clock.synchronized()
        faces, started = self.pipeline.burst(), time.time()
        for i in range(b.frames):
            frame = self.camera.read()
            if frame is None:
                break
            faces.add(frame)  # the workers start on it while the next frames come
            if stepped:  # a file played as fast as possible: spread the burst by the file's own frame rate
                skip = max(0, round(interval * (self.camera.fps or 30)) - 1)
                for _ in range(skip):
                    self.camera.read()
            elif i + 1 < b.frames:
                time.sleep(max(0.0, started + (i + 1) * interval - time.time()))
        if not faces and self.camera.ended:  # a recording that has run out: nothing more will be seen
            if not self.told_ended:
                log.warning("the source has ended (no loop): triggers make no more events")
            self.told_ended = True
            return
        fired = wall - max(0.0, mono - fired_mono)  # the trigger's moment, on this burst's one wall reading
        burst = Burst(trigger, fired, wall + (self.clock.mono() - mono), fired_mono, mark(synchronized), faces)
        self.stats["bursts"] += 1
        try:
            self._bursts.put_nowait(burst)
        except queue.Full:
            faces.cancel()
            self.stats["bursts_dropped_busy"] += 1
            log.warning(
                "vision is still busy and %d burst(s) already wait (burst.queue): this burst is dropped (counted "
                "in health)",
                self.cfg.burst.queue,
            )

    # --- vision thread ---
    def _vision_loop(self) -> None:
        while (burst := self._bursts.get()) is not None:
            try:
                persons = self.persons_of(burst)
                restampable = (burst.started_mono, self.clock.boot) if burst.clock == "unsynchronized" else None
                with self.keys.lock:  # the key file cannot move between hashing and the commit (and its re-stamp)
                    event = self.make_event(burst, persons)
                    self.outbox.put(event, restampable)
                log.info(
                    "event %s committed: %d person(s), %d face(s), clock %s",
                    event["event_id"],
                    len(event["persons"]),
                    event["faces"],
                    event["clock"],
                )
                self.last_event = {"id": event["event_id"], "at": event["ended_at"], "persons": len(event["persons"])}
            except Exception:
                self.stats["events_failed"] += 1
                log.exception("a burst could not be turned into an event")

    def persons_of(self, burst: Burst) -> list:
        faces = burst.faces.faces()
        self.pipeline.embed([f for frame in faces for f in frame])  # one interpreter call per burst
        return group(faces, self.pipeline.threshold, self.rules)

    def make_event(self, burst: Burst, persons: list) -> dict:
        """The burst's event, hashed with the key of its epoch (edge.unit.keys: the file's, unless the burst was
        taken on a synchronised clock in a later epoch, to which the file then moves first)."""
        return sighting.build(
            self.identity,
            burst.trigger,
            burst.started,
            burst.ended,
            len(burst.faces),
            persons,
            self.keys.for_burst(burst.started, burst.clock == "synchronized"),
            burst.clock,
        )

    def _stop_vision(self) -> None:
        self._bursts.put(None)
        self._vision.join(timeout=30)

    def close(self) -> None:
        self._stack.close()
