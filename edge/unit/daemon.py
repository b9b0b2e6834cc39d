"""`traceon-edge run`: wires trigger → source → burst → faces → persons → facehash → event → outbox → mqtt.

Three threads so that no stage stalls another: the main thread waits for triggers and captures bursts
(frames stay in memory), a vision thread turns each burst into one event and commits it to the
outbox, and the broker link's publisher empties the outbox while connected. Signals: SIGTERM/SIGINT
finish the current burst (its event is committed and sent before the link closes), flush, say
`offline` and exit 0; SIGHUP reloads the config (a bad new config is reported and the old one keeps
running); SIGUSR1 starts a burst. systemd's watchdog is fed from the main loop only while every thread
(vision, publisher, MQTT network loop) is alive: a unit that cannot publish is restarted, not left
saying `online`.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edge.unit import config
from edge.unit.config import Config, ConfigError
from edge.unit.outbox import Outbox
from edge.unit.runtime import Runtime
from edge.unit.sources import Camera
from edge.unit.systemd import sd_notify
from edge.unit.triggers import TriggerInbox
from edge.unit.uplink import BrokerLink
from edge.unit.vision import VisionSettings
from edge.unit.vision.detect import Detector
from edge.unit.vision.pipeline import settings_detector

log = logging.getLogger("traceon-edge")


def real_outbox(cfg: Config) -> Outbox:
    o = cfg.outbox
    return Outbox(o.path, o.max_events, o.max_bytes, o.when_full)


@dataclass(frozen=True)
class Parts:
    """What a Runtime is built from, each made from its config: tests hand in a failing detector, camera or outbox."""

    detector: Callable[[VisionSettings, Path], Detector] = settings_detector
    camera: Callable[[config.SourceConfig], Camera] = Camera
    outbox: Callable[[Config], Outbox] = real_outbox
    link: Callable[..., BrokerLink] = BrokerLink


class Daemon:
    def __init__(
        self,
        config_path: Path,
        pin_factory=None,
        on_event: Callable[[dict], None] | None = None,
        clock=None,
        parts: Parts | None = None,
    ):
        self.config_path = config_path
        self.clock, self.parts = clock, parts or Parts()
        self.pin_factory = pin_factory
        self.on_event = on_event or (lambda event: None)
        self.inbox = TriggerInbox()
        self._stop = threading.Event()
        self._reload = threading.Event()

    def _build(self) -> Runtime:
        cfg = config.load(self.config_path)
        logging.getLogger().setLevel(cfg.logging.level)
        fingerprint = config.fingerprint(self.config_path)
        return Runtime(cfg, fingerprint, self.inbox, self.pin_factory, self.on_event, self.clock, self.parts)

    def stop(self) -> None:
        self._stop.set()

    def reload(self) -> None:
        self._reload.set()

    def run(self) -> int:
        self._install_signals()  # first: a SIGTERM while the models load still ends cleanly
        runtime = self._build()
        sd_notify(f"READY=1\nSTATUS=running with config {runtime.fingerprint}")
        log.info(
            "running: %s/%s/%s, config %s",
            runtime.cfg.unit.site,
            runtime.cfg.unit.checkpoint,
            runtime.cfg.unit.device,
            runtime.fingerprint,
        )
        try:
            while not self._stop.is_set():
                if runtime.healthy:
                    sd_notify("WATCHDOG=1")
                runtime.check_clock()
                if self._reload.is_set():
                    self._reload.clear()
                    runtime = self._reloaded(runtime)
                runtime.poll_motion()
                wait = runtime.cfg.trigger.check_every if runtime.motion else 0.2
                taken = self.inbox.take(timeout=wait)
                if taken and not self._stop.is_set():
                    runtime.capture(*taken)
                    self._stop.wait(runtime.cfg.burst.cooldown)
                    self.inbox.discard()
        finally:
            sd_notify("STOPPING=1")
            runtime.close()
            log.info("stopped")
        return 0

    def _reloaded(self, runtime: Runtime) -> Runtime:
        try:
            config.load(self.config_path)
        except ConfigError as e:
            log.error("not reloading, the new config is invalid; still running the previous one:\n%s", e)
            return runtime
        sd_notify("RELOADING=1")
        previous = (runtime.cfg, runtime.fingerprint)
        runtime.close()
        try:
            runtime = self._build()
            log.info("reloaded config %s", runtime.fingerprint)
        except Exception as e:
            log.error("the new config could not start (%s); going back to the previous one", e)
            runtime = Runtime(*previous, self.inbox, self.pin_factory, self.on_event, self.clock, self.parts)
        sd_notify("READY=1")
        return runtime

    def _install_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # embedded in a test or another program: it calls stop() and reload() itself
        signal.signal(signal.SIGTERM, lambda *_: self.stop())
        signal.signal(signal.SIGINT, lambda *_: self.stop())
        signal.signal(signal.SIGHUP, lambda *_: self.reload())
        signal.signal(signal.SIGUSR1, lambda *_: self.inbox.fire("manual"))


def run(config_path: Path, print_events: bool = False, pin_factory=None) -> int:
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    def show(event: dict) -> None:
        if print_events:
            print(json.dumps(event), flush=True)

    return Daemon(config_path, pin_factory, show).run()
