"""detect → align → quality → embed, for one frame or a batch of faces from a burst."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge.core import shipped
from edge.unit.config import VisionConfig
from edge.unit.vision.align import Aligner, points
from edge.unit.vision.detect import Box, Detector, DetectorKind, Followed, detect_near, make_detector
from edge.unit.vision.embedder import Embedder
from edge.unit.vision.frame import ColorOrder, check_frame, to_rgb
from edge.unit.vision.quality import Quality, measure

UNIT = VisionConfig.model_fields  # a unit's defaults, for the settings that mean the same here


@dataclass(frozen=True)
class VisionSettings:
    """Detection takes a unit's defaults (edge.unit.config.VisionConfig: one place for them). Threads, workers
    and search_every default to one photo at a time on one thread, as `embed` and the tools take photos;
    a unit sets every field from its config (`from_config`)."""

    working_width: int = UNIT["working_width"].default  # detection runs on a copy at most this wide
    upsample: int = UNIT["upsample"].default  # HOG: each step finds faces half as large, at about 4× the time
    threads: int = 1  # interpreter threads for the embedder
    detector: DetectorKind = UNIT["detector"].default.kind  # chosen on lfw_dev: no photo without a face
    min_score: float = UNIT["detector"].default.min_score  # lfw_dev's HOG misses score 0.88–0.93 on YuNet
    workers: int = 1  # threads that find the faces of a burst's frames at once
    search_every: int = 1  # a burst's frames searched whole; between them, only near the faces found

    @classmethod
    def from_config(cls, vision: VisionConfig, frames_follow_on: bool = True) -> VisionSettings:
        """A unit's settings; a source whose frames do not follow on (photos) has each searched whole."""
        min_score = getattr(vision.detector, "min_score", cls.min_score)
        every = vision.search_every if frames_follow_on else 1
        v = vision
        return cls(v.working_width, v.upsample, v.threads, v.detector.kind, min_score, v.workers, every)


def settings_detector(settings: VisionSettings, yunet_model: Path) -> Detector:
    s = settings
    return make_detector(s.detector, yunet_model, s.working_width, s.upsample, s.min_score)


@dataclass
class Face:
    box: Box
    landmarks: np.ndarray  # 5×2, full-resolution pixels
    quality: Quality
    chip: np.ndarray = field(repr=False)  # 150×150×3 RGB, in memory only
    by: str = "hog"  # the detector that found it
    embedding: np.ndarray | None = field(default=None, repr=False)


class FacePipeline:
    def __init__(
        self,
        settings: VisionSettings | None = None,
        model_dir: Path | None = None,
        detector: Callable[[VisionSettings, Path], Detector] | None = None,
    ):
        self.settings = settings or VisionSettings()
        self.files = shipped.load_models(directory=model_dir)
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
        return self._find_here(frame, order, None)

    def find_faces_in(self, frames: list[np.ndarray], order: ColorOrder = "bgr") -> list[list[Face]]:
        """The faces of each frame of a burst, found by `settings.workers` threads at once."""
        burst = self.burst(order)
        for frame in frames:
            burst.add(frame)
        return burst.faces()

    def burst(self, order: ColorOrder = "bgr") -> BurstFaces:
        """Finds the faces of a burst's frames as they are added (on the workers, when there are some)."""
        return BurstFaces(self, order)

    def _thread_parts(self) -> tuple[Detector, Aligner]:
        if not hasattr(self._local, "parts"):
            self._local.parts = (self._make_detector(self.settings, self.files.detector), Aligner(self.files.landmarks))
        return self._local.parts

    def _find_here(self, frame: np.ndarray, order: ColorOrder, near: list[Followed] | None) -> list[Face]:
        return self._find(frame, order, self.detector, self.aligner, near)

    def _find_on_worker(self, frame: np.ndarray, order: ColorOrder, near: list[Followed] | None) -> list[Face]:
        return self._find(frame, order, *self._thread_parts(), near)

    def _find(
        self, frame: np.ndarray, order: ColorOrder, detector: Detector, aligner: Aligner, near: list[Followed] | None
    ) -> list[Face]:
        frame = check_frame(frame)
        if near is None:
            detections = detector.detect(frame, order)
        else:
            detections = detect_near(detector, frame, order, near, self.settings.working_width)
        if not detections:
            return []  # most frames of a doorway: no full-size colour copy for them
        rgb = to_rgb(frame, order)
        faces = []
        for detection in detections:
            shape = aligner.landmarks(rgb, detection.box)
            chip = aligner.chip(rgb, shape)
            pts = points(shape)
            faces.append(Face(detection.box, pts, measure(detection, pts, chip), chip, detection.by))
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


class BurstFaces:
    """The faces of a burst's frames, found as the frames are added.

    Every `search_every`-th frame is searched whole. The frames between are searched only near the faces that
    search found, once it is done: a face keeps to its place from one frame to the next, and a region around it
    costs a quarter of the whole frame. A face that comes into view between two whole searches is found at the
    next. With workers, searches run on them as frames come; without, they run when `faces()` is called.
    """

    def __init__(self, pipeline: FacePipeline, order: ColorOrder):
        self._pipeline, self._order = pipeline, order
        self._every = max(1, pipeline.settings.search_every)
        self._frames: list[np.ndarray] = []
        self._found: list[Future] = []  # one per frame, in frame order
        self._started: list[Future] = []  # the near searches handed to the workers

    def __len__(self) -> int:
        return len(self._frames)

    def add(self, frame: np.ndarray) -> None:
        index = len(self._frames)
        self._frames.append(frame)
        pool = self._pipeline._pool
        if pool is None:
            return
        if index % self._every == 0:
            self._found.append(pool.submit(self._pipeline._find_on_worker, frame, self._order, None))
        else:
            self._found.append(self._after(self._found[index - index % self._every], frame))

    def _after(self, searched: Future, frame: np.ndarray) -> Future:
        """A future for the faces near those `searched` found; if that search failed, its error."""
        found: Future = Future()
        # Nothing here refers back to self: the futures would hold a cycle that keeps a burst's frames in memory
        # until the garbage collector happens to run (190 MB more peak RSS in bench_burst).
        pool, find, order, started = self._pipeline._pool, self._pipeline._find_on_worker, self._order, self._started

        def start(done: Future) -> None:
            try:
                if done.cancelled() or found.cancelled():
                    found.cancel()
                    return
                if (error := done.exception()) is not None:
                    raise error  # the burst fails with it: searching on would be thrown away
                running = pool.submit(find, frame, order, followed(done.result()))
                started.append(running)
                running.add_done_callback(lambda r: _pass_on(r, found))
            except BaseException as error:  # e.g. the pipeline closed meanwhile: never leave `found` pending
                if found.set_running_or_notify_cancel():
                    found.set_exception(error)

        searched.add_done_callback(start)
        return found

    def faces(self) -> list[list[Face]]:
        """The faces of every frame, in frame order (waits for the workers)."""
        if self._found:
            return [found.result() for found in self._found]
        faces: list[list[Face]] = []
        for index, frame in enumerate(self._frames):
            near = followed(faces[index - index % self._every]) if index % self._every else None
            faces.append(self._pipeline._find_here(frame, self._order, near))
        return faces

    def cancel(self) -> None:
        """Nobody will read these faces: free the workers for the bursts that wait."""
        for found in [*self._found, *self._started]:
            found.cancel()


def followed(faces: list[Face]) -> list[Followed]:
    """What the frames after a whole search look for: each face's box, and the detector that found it."""
    return [(face.box, face.by) for face in faces]


def _pass_on(source: Future, target: Future) -> None:
    if not target.set_running_or_notify_cancel():
        return
    if source.cancelled():
        target.set_exception(CancelledError())
    elif (error := source.exception()) is not None:
        target.set_exception(error)
    else:
        target.set_result(source.result())
