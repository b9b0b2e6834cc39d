"""What starts a burst: a PIR sensor (gpiozero), frame-difference motion, an interval, or a person
(SIGUSR1 or the MQTT `cmd/trigger` topic, always available).

Every trigger only drops its kind into a one-slot inbox; a trigger that arrives while a burst runs or
cools down is coalesced (counted), never queued without bound. Callbacks run on other threads
(gpiozero's, paho's, a signal handler), so they do nothing else.
"""

from __future__ import annotations

import threading
import time

import cv2
import numpy as np

from edge.unit.config import IntervalTriggerConfig, PirTriggerConfig


class TriggerInbox:
    def __init__(self):
        self._cond = threading.Condition()
        self._pending: str | None = None
        self._pending_at = 0.0
        self.coalesced = 0
        self.last: tuple[str, float] | None = None

    def fire(self, kind: str) -> None:
        with self._cond:
            if self._pending is None:
                self._pending, self._pending_at = kind, time.monotonic()
            else:
                self.coalesced += 1
            self.last = (kind, time.time())
            self._cond.notify_all()

    def take(self, timeout: float) -> tuple[str, float] | None:
        """The pending trigger (kind, monotonic time it fired), waiting up to `timeout` seconds."""
        with self._cond:
            if self._pending is None:
                self._cond.wait(timeout)
            if self._pending is None:
                return None
            taken = (self._pending, self._pending_at)
            self._pending = None
            return taken

    def discard(self) -> int:
        """Drop what arrived during a burst or its cooldown; returns how many were dropped."""
        with self._cond:
            dropped = 1 if self._pending is not None else 0
            self._pending = None
            self.coalesced += dropped
            return dropped


class PirSensor:
    """gpiozero MotionSensor; the pin factory is passed in (MockFactory in tests, lgpio on a Pi)."""

    def __init__(self, settings: PirTriggerConfig, inbox: TriggerInbox, pin_factory=None):
        from gpiozero import MotionSensor

        self._sensor = MotionSensor(
            settings.pin, queue_len=settings.queue_len, threshold=settings.threshold, pin_factory=pin_factory
        )
        self._sensor.when_motion = lambda: inbox.fire("pir")

    def close(self) -> None:
        self._sensor.close()


class IntervalTimer:
    def __init__(self, settings: IntervalTriggerConfig, inbox: TriggerInbox):
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(settings.seconds, inbox), daemon=True)
        self._thread.start()

    def _run(self, seconds: float, inbox: TriggerInbox) -> None:
        while not self._stop.wait(seconds):
            inbox.fire("interval")

    def close(self) -> None:
        self._stop.set()


class MotionDetector:
    """Frame difference on a small blurred gray copy: fires when enough pixels changed."""

    def __init__(self, changed: float):
        self.changed = changed
        self._previous: np.ndarray | None = None

    def moved(self, frame: np.ndarray) -> bool:
        gray = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        small = cv2.GaussianBlur(cv2.resize(gray, (160, 120), interpolation=cv2.INTER_AREA), (5, 5), 0)
        previous, self._previous = self._previous, small
        if previous is None:
            return False
        return float(np.mean(cv2.absdiff(small, previous) > 25)) >= self.changed
