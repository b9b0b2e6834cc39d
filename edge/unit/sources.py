"""Camera sources behind one small interface: `read()` gives the next BGR frame or None.

picamera2 is imported only when chosen (it exists only on a Raspberry Pi). A camera that disappears
or stops giving frames is reopened with backoff by `Camera`, which reports its state for health; the
daemon keeps running meanwhile.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import cv2
import numpy as np

from edge.core.errors import SourceError, TraceonError
from edge.unit.config import ImagesSourceConfig, Picamera2SourceConfig, VideoSourceConfig, WebcamSourceConfig
from edge.unit.vision.media import IMAGE_SUFFIXES, read_image

log = logging.getLogger(__name__)


class VideoFile:
    def __init__(self, settings: VideoSourceConfig):
        self.settings = settings
        self._capture = cv2.VideoCapture(str(settings.path))
        if not self._capture.isOpened():
            raise SourceError(f"cannot open video {settings.path}")
        self.fps = self._capture.get(cv2.CAP_PROP_FPS) or 25.0
        self._start = time.monotonic()
        self._index = 0

    def read(self) -> np.ndarray | None:
        if self.settings.realtime:  # like a live camera: the frame of this moment, never a backlog
            target = int((time.monotonic() - self._start) * self.fps)
            while self._index < target and self._capture.grab():
                self._index += 1
        ok, frame = self._capture.read()
        if not ok and self.settings.loop:
            self._capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            self._start, self._index = time.monotonic(), 0
            ok, frame = self._capture.read()
        if not ok:
            return None
        self._index += 1
        return frame

    def close(self) -> None:
        self._capture.release()


class ImageFolder:
    def __init__(self, settings: ImagesSourceConfig):
        self.settings = settings
        self._paths = sorted(p for p in Path(settings.path).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self._paths:
            raise SourceError(f"no images in {settings.path}")
        self._next = 0

    def read(self) -> np.ndarray | None:
        while self._next < len(self._paths) or self.settings.loop:
            path = self._paths[self._next % len(self._paths)]
            self._next += 1
            try:
                return read_image(path)
            except TraceonError as e:
                log.warning("skipping %s: %s", path, e)
        return None

    def close(self) -> None:
        pass


class Webcam:
    def __init__(self, settings: WebcamSourceConfig):
        self._capture = cv2.VideoCapture(settings.device)
        if not self._capture.isOpened():
            raise SourceError(f"cannot open webcam {settings.device!r} (is it plugged in, and in group video?)")
        self._capture.set(cv2.CAP_PROP_FRAME_WIDTH, settings.width)
        self._capture.set(cv2.CAP_PROP_FRAME_HEIGHT, settings.height)

    def read(self) -> np.ndarray | None:
        ok, frame = self._capture.read()
        return frame if ok else None

    def close(self) -> None:
        self._capture.release()


class PiCamera:
    def __init__(self, settings: Picamera2SourceConfig):
        try:
            from picamera2 import Picamera2
        except ImportError:
            raise SourceError(
                "source 'picamera2' needs the picamera2 package: on Raspberry Pi OS `sudo apt install "
                "python3-picamera2` and a venv made with --system-site-packages"
            ) from None
        self._camera = Picamera2()
        size = (settings.width, settings.height)
        # picamera2 names formats by the word, not memory order: "RGB888" arrives as B, G, R bytes,
        # which is OpenCV's BGR.
        self._camera.configure(self._camera.create_video_configuration(main={"size": size, "format": "RGB888"}))
        self._camera.start()

    def read(self) -> np.ndarray | None:
        return self._camera.capture_array("main")

    def close(self) -> None:
        self._camera.stop()
        self._camera.close()


OPENERS = {"video": VideoFile, "images": ImageFolder, "webcam": Webcam, "picamera2": PiCamera}


class Camera:
    """The configured source, reopened with backoff when it fails; `state` feeds health."""

    def __init__(self, settings, opener=None):
        self.settings = settings
        self._open = opener or OPENERS[settings.kind]
        self._source = None
        self._retry_at = 0.0
        self._backoff = 1.0
        self.state = "not opened yet"
        self.ended = False  # a video or image folder that has run out (without loop)

    def read(self) -> np.ndarray | None:
        if self._source is None and not self._reopen():
            return None
        try:
            frame = self._source.read()
        except Exception as e:  # a driver's own exception: treat as the camera going away
            frame = None
            log.warning("camera read failed: %s", e)
        if frame is None:
            if self.settings.kind in ("video", "images") and not getattr(self.settings, "loop", False):
                self.ended, self.state = True, "ended"
                return None
            self._drop("returned no frame")
        return frame

    @property
    def fps(self) -> float | None:
        """The frame rate of a video file (None for live cameras and image folders)."""
        return getattr(self._source, "fps", None)

    def _reopen(self) -> bool:
        if self.ended or time.monotonic() < self._retry_at:
            return False
        try:
            self._source = self._open(self.settings)
            self.state, self._backoff = "ok", 1.0
            return True
        except Exception as e:
            self._drop(str(e))
            return False

    def _drop(self, why: str) -> None:
        if self._source is not None:
            try:
                self._source.close()
            except Exception:
                log.debug("closing a failed camera also failed", exc_info=True)
        self._source = None
        self.state = f"reopening: {why}"
        self._retry_at = time.monotonic() + self._backoff
        log.warning("camera %s; trying again in %.0f s", why, self._backoff)
        self._backoff = min(self._backoff * 2, 60.0)

    def close(self) -> None:
        if self._source is not None:
            self._source.close()
            self._source = None
        self.state = "closed"
