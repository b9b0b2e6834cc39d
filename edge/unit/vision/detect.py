"""Face detectors behind one small protocol: dlib's HOG, OpenCV's YuNet, and HOG with YuNet for what it misses.

Each runs on a copy of the frame at most `working_width` wide and gives boxes in full-resolution pixels,
shaped the way dlib's HOG draws them, because that is what the 5-point shape predictor expects.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal, Protocol

import cv2
import dlib
import numpy as np

from edge.unit.vision.frame import ColorOrder

Box = tuple[int, int, int, int]  # left, top, right, bottom in full-resolution pixels
DetectorKind = Literal["hog", "yunet", "hog+yunet"]
Followed = tuple[Box, str]  # a face's box in an earlier frame, and which detector found it ("hog" or "yunet")

# A YuNet box is taller than HOG's and sits higher. Medians over the 3,467 lfw_dev faces both found:
# HOG's centre is 0.03 w right of and 0.06 h below YuNet's, its side 0.98 √(w·h).
YUNET_SHIFT_X, YUNET_SHIFT_Y, YUNET_SIDE = 0.03, 0.06, 0.98
SAME_FACE_IOU = 0.3  # a YuNet box overlapping a HOG box this much is the same face
# Eyes closer than this (fraction of YuNet's box width) mean a head turned to profile: dlib's 5 points
# cannot align it. 7 of 3,443 lfw_dev faces are below it (their same-person pairs fail 2 of 5, against
# 0.8% for the rest); the clip's profile close-ups of Miranda sit at 0.03–0.22 and hash 0.27 from him.
PROFILE_EYE_SPAN = 0.25
# Between whole-frame searches a burst looks for a face only near where it was: a region one face side around
# its box, at the working copy's scale but with the face at most 120 px (HOG's window is 80 px). Up to that size
# the detector sees the pixels the whole search saw; on 640×480 with one face 144 px wide, hog+yunet takes
# 14 ms there against 36 ms over the whole frame.
NEAR_MARGIN = 1.0
NEAR_SIDE = 120
MIN_REGION = 20  # px: a region narrower than this (a sliver at the frame's edge) holds no face to find


@dataclass(frozen=True)
class Detection:
    box: Box
    score: float  # the detector's confidence: HOG's SVM margin, YuNet's 0–1 score
    by: str = "hog"
    profile: bool = False  # a head in full profile (YuNet sees it; HOG finds none)


class Detector(Protocol):
    kind: str

    def detect(self, frame: np.ndarray, order: ColorOrder) -> list[Detection]: ...

    def part(self, by: str) -> Detector:
        """The detector that follows a face this one found `by` ("hog" or "yunet"): itself, or one of its parts."""
        ...


def iou(a: Box, b: Box) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def working_copy(frame: np.ndarray, working_width: int) -> tuple[np.ndarray, float]:
    """The frame scaled down to at most `working_width` (never enlarged), and the scale used."""
    height, width = frame.shape[:2]
    scale = min(1.0, working_width / width)
    if scale < 1.0:
        size = (working_width, max(1, round(height * scale)))
        frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
    return frame, scale


def full_box(left: float, top: float, right: float, bottom: float, scale: float, shape: tuple) -> Box | None:
    height, width = shape[:2]
    box = (
        max(0, round(left / scale)),
        max(0, round(top / scale)),
        min(width, round(right / scale)),
        min(height, round(bottom / scale)),
    )
    return box if box[2] > box[0] and box[3] > box[1] else None


class HogDetector:
    """dlib's HOG on the colour frame: on lfw_dev it misses 20 photos where the grayscale copy misses 28."""

    kind = "hog"

    def __init__(self, working_width: int = 640, upsample: int = 0):
        self.working_width = working_width
        self.upsample = upsample
        self._detector = dlib.get_frontal_face_detector()

    def detect(self, frame: np.ndarray, order: ColorOrder) -> list[Detection]:
        small, scale = working_copy(frame, self.working_width)  # convert the small copy, not the whole frame
        if small.ndim == 3 and order == "bgr":
            small = cv2.cvtColor(small, cv2.COLOR_BGR2RGB)
        rects, scores, _ = self._detector.run(small, self.upsample, 0.0)
        found = []
        for rect, score in zip(rects, scores, strict=True):
            box = full_box(rect.left(), rect.top(), rect.right() + 1, rect.bottom() + 1, scale, frame.shape)
            if box:
                found.append(Detection(box, float(score), "hog"))
        return found

    def part(self, by: str) -> Detector:
        return self


class YunetDetector:
    """OpenCV's YuNet (a 75 k-parameter CNN): finds faces HOG misses (turned, tilted, partly hidden)."""

    kind = "yunet"

    def __init__(self, model_path: Path, working_width: int = 640, min_score: float = 0.8):
        self.working_width = working_width
        self._net = cv2.FaceDetectorYN.create(str(model_path), "", (320, 320), min_score, 0.3, 5000)

    def detect(self, frame: np.ndarray, order: ColorOrder) -> list[Detection]:
        small, scale = working_copy(frame, self.working_width)  # convert the small copy, not the whole frame
        if small.ndim == 2:
            small = cv2.cvtColor(small, cv2.COLOR_GRAY2BGR)
        elif order == "rgb":
            small = cv2.cvtColor(small, cv2.COLOR_RGB2BGR)
        self._net.setInputSize((small.shape[1], small.shape[0]))
        _, rows = self._net.detect(small)
        found = []
        for row in [] if rows is None else rows:
            x, y, w, h, score = float(row[0]), float(row[1]), float(row[2]), float(row[3]), float(row[14])
            eye_span = float(np.hypot(row[6] - row[4], row[7] - row[5]))  # right eye to left eye
            cx, cy = x + w * (0.5 + YUNET_SHIFT_X), y + h * (0.5 + YUNET_SHIFT_Y)
            half = YUNET_SIDE * float(np.sqrt(max(w * h, 0.0))) / 2
            box = full_box(cx - half, cy - half, cx + half, cy + half, scale, frame.shape)
            if box:
                found.append(Detection(box, score, "yunet", eye_span < PROFILE_EYE_SPAN * w))
        return found

    def part(self, by: str) -> Detector:
        return self


class HogThenYunet:
    """HOG's faces, then each YuNet face that overlaps none of them: every face either finds, once."""

    kind = "hog+yunet"

    def __init__(self, hog: HogDetector, yunet: YunetDetector):
        self.hog, self.yunet = hog, yunet

    def part(self, by: str) -> Detector:
        return self.yunet if by == "yunet" else self.hog

    def detect(self, frame: np.ndarray, order: ColorOrder) -> list[Detection]:
        found = self.hog.detect(frame, order)
        for extra in self.yunet.detect(frame, order):
            if all(iou(extra.box, d.box) < SAME_FACE_IOU for d in found):
                found.append(extra)
        return found


def detect_near(
    detector: Detector, frame: np.ndarray, order: ColorOrder, followed: list[Followed], working_width: int
) -> list[Detection]:
    """The faces found in the regions around `followed` (box, and which detector found it, in an earlier frame),
    in frame pixels. Each is followed by the detector that found it: HOG follows the faces HOG found, so YuNet
    cannot swap in the half-hidden face of someone passing behind one (in passing_close that face hashes as a
    third person), and following those costs HOG alone."""
    height, width = frame.shape[:2]
    working_scale = min(1.0, working_width / width)
    found: list[Detection] = []
    for (left, top, right, bottom), by in followed:
        side = max(right - left, bottom - top)
        x0, y0 = max(0, round(left - NEAR_MARGIN * side)), max(0, round(top - NEAR_MARGIN * side))
        x1, y1 = min(width, round(right + NEAR_MARGIN * side)), min(height, round(bottom + NEAR_MARGIN * side))
        scale = min(working_scale, NEAR_SIDE / max(side, 1))
        size = (max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale)))
        if min(size) < MIN_REGION:
            continue
        region = cv2.resize(frame[y0:y1, x0:x1], size, interpolation=cv2.INTER_AREA)
        candidates = []
        for d in detector.part(by).detect(region, order):
            if (inside := full_box(*d.box, scale, (y1 - y0, x1 - x0))) is not None:
                candidates.append(replace(d, box=(x0 + inside[0], y0 + inside[1], x0 + inside[2], y0 + inside[3])))
        # Only the face it follows: new faces wait for the next whole search.
        if candidates:
            nearest = min(candidates, key=lambda d: _centre_distance(d.box, (left, top, right, bottom)))
            if all(iou(nearest.box, f.box) < SAME_FACE_IOU for f in found):  # two regions may overlap
                found.append(nearest)
    return found


def _centre_distance(a: Box, b: Box) -> float:
    return float(np.hypot(a[0] + a[2] - b[0] - b[2], a[1] + a[3] - b[1] - b[3]))


def make_detector(
    kind: DetectorKind, yunet_model: Path, working_width: int = 640, upsample: int = 0, min_score: float = 0.8
) -> Detector:
    if kind == "hog":
        return HogDetector(working_width, upsample)
    if kind == "yunet":
        return YunetDetector(yunet_model, working_width, min_score)
    return HogThenYunet(HogDetector(working_width, upsample), YunetDetector(yunet_model, working_width, min_score))
