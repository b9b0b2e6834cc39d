"""detect → align → quality → embed, for one frame or a batch of faces from a burst."""

from __future__ import annotations

from collections.abc import Callable
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
        self.detector = (detector or settings_detector)(self.settings, self.files.detector)
        self.aligner = Aligner(self.files.landmarks)
        self.embedder = Embedder(self.files.model, self.files.manifest, self.settings.threads)

    @property
    def threshold(self) -> float:
        """Cosine similarity at or above which two embeddings are taken as one person."""
        return float(self.files.manifest["match"]["threshold"])

    def find_faces(self, frame: np.ndarray, order: ColorOrder = "bgr") -> list[Face]:
        frame = check_frame(frame)
        rgb = to_rgb(frame, order)
        faces = []
        for detection in self.detector.detect(frame, order):
            shape = self.aligner.landmarks(rgb, detection.box)
            chip = self.aligner.chip(rgb, shape)
            pts = points(shape)
            faces.append(Face(detection.box, pts, measure(detection, pts, chip), chip))
        return faces

    def embed(self, faces: list[Face]) -> list[Face]:
        """Embed all faces in one interpreter call (e.g. every face of a burst)."""
        if faces:
            vectors = self.embedder.embed(np.stack([f.chip for f in faces]))
            for face, vector in zip(faces, vectors, strict=True):
                face.embedding = vector
        return faces

    def process(self, frame: np.ndarray, order: ColorOrder = "bgr") -> list[Face]:
        return self.embed(self.find_faces(frame, order))
