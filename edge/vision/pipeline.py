"""detect → align → quality → embed, for one frame or a batch of faces from a burst."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge.vision import models
from edge.vision.align import Aligner, points
from edge.vision.detect import Box, Detector, DetectorKind, make_detector
from edge.vision.embed import Embedder
from edge.vision.frame import ColorOrder, check_frame, to_rgb
from edge.vision.quality import Quality, measure


@dataclass(frozen=True)
class VisionSettings:
    working_width: int = 640  # detection runs on a copy at most this wide
    upsample: int = 0  # HOG: each step finds faces half as large, at about 4× the detection time
    threads: int = 1  # interpreter threads for the embedder
    detector: DetectorKind = "hog+yunet"  # chosen on lfw_dev: no photo without a face (HOG alone: 20)
    min_score: float = 0.8  # YuNet's confidence below which a box is not a face: lfw_dev's HOG misses score 0.88–0.93
    workers: int = 1  # threads that find the faces of a burst's frames at once


def settings_detector(settings: VisionSettings, yunet_model: Path) -> Detector:
    s = settings
    return make_detector(s.detector, yunet_model, s.working_width, s.upsample, s.min_score)


@dataclass
class Face:
    box: Box
    landmarks: np.ndarray  # 5×2, full-resolution pixels
    quality: Quality
    chip: np.ndarray = field(repr=False)  # 150×150×3 RGB, in memory only
    embedding: np.ndarray | None = field(default=None, repr=False)


class FacePipeline:
    def __init__(
        self,
        settings: VisionSettings | None = None,
        model_dir: Path | None = None,
        detector: Callable[[VisionSettings, Path], Detector] | None = None,
    ):
        self.settings = settings or VisionSettings()
        self.files = models.load(directory=model_dir)
        self._make_detector = detector or settings_detector
        self.detector = self._make_detector(self.settings, self.files.detector)
        self.aligner = Aligner(self.files.landmarks)
        self.embedder = Embedder(self.files.model, self.files.manifest, self.settings.threads)
        # dlib and OpenCV release the GIL: threads find the faces of a burst's frames at once (1.9× on 2 cores).
        # Each thread gets its own detector and landmark model, since neither is documented as thread-safe.
        self._pool = ThreadPoolExecutor(self.settings.workers, "faces") if self.settings.workers > 1 else None
        self._local = threading.local()

    @property
    def threshold(self) -> float:
        """Cosine similarity at or above which two embeddings are taken as one person."""
        return float(self.files.manifest["match"]["threshold"])

    def find_faces(self, frame: np.ndarray, order: ColorOrder = "bgr") -> list[Face]:
        return self._find(frame, order, self.detector, self.aligner)

    def find_faces_in(self, frames: list[np.ndarray], order: ColorOrder = "bgr") -> list[list[Face]]:
        """The faces of each frame, found by `settings.workers` threads at once."""
        if self._pool is None or len(frames) < 2:
            return [self.find_faces(frame, order) for frame in frames]
        return [started.result() for started in [self.start_finding(frame, order) for frame in frames]]

    def start_finding(self, frame: np.ndarray, order: ColorOrder = "bgr") -> Future | None:
        """Start finding the faces of one frame on a worker; None when there are no workers (find them later)."""
        if self._pool is None:
            return None
        return self._pool.submit(lambda: self._find(frame, order, *self._thread_parts()))

    def _thread_parts(self) -> tuple[Detector, Aligner]:
        if not hasattr(self._local, "parts"):
            self._local.parts = (self._make_detector(self.settings, self.files.detector), Aligner(self.files.landmarks))
        return self._local.parts

    @staticmethod
    def _find(frame: np.ndarray, order: ColorOrder, detector: Detector, aligner: Aligner) -> list[Face]:
        frame = check_frame(frame)
        rgb = to_rgb(frame, order)
        faces = []
        for detection in detector.detect(frame, order):
            shape = aligner.landmarks(rgb, detection.box)
            chip = aligner.chip(rgb, shape)
            pts = points(shape)
            faces.append(Face(detection.box, pts, measure(detection, pts, chip), chip))
        return faces

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    def embed(self, faces: list[Face]) -> list[Face]:
        """Embed all faces in one interpreter call (e.g. every face of a burst)."""
        if faces:
            vectors = self.embedder.embed(np.stack([f.chip for f in faces]))
            for face, vector in zip(faces, vectors, strict=True):
                face.embedding = vector
        return faces

    def process(self, frame: np.ndarray, order: ColorOrder = "bgr") -> list[Face]:
        return self.embed(self.find_faces(frame, order))
