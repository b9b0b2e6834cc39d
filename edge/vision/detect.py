"""dlib's HOG frontal face detector, run on a downscaled grayscale copy of the frame."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import dlib
import numpy as np

Box = tuple[int, int, int, int]  # left, top, right, bottom in full-resolution pixels


@dataclass(frozen=True)
class Detection:
    box: Box
    score: float  # the detector's SVM margin: higher is a clearer face


class HogDetector:
    def __init__(self, working_width: int = 640, upsample: int = 0):
        self.working_width = working_width
        self.upsample = upsample
        self._detector = dlib.get_frontal_face_detector()

    def detect(self, gray: np.ndarray) -> list[Detection]:
        height, width = gray.shape
        scale = min(1.0, self.working_width / width)  # never enlarge: that is what upsample is for
        small = gray
        if scale < 1.0:
            size = (self.working_width, max(1, round(height * scale)))
            small = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
        rects, scores, _ = self._detector.run(small, self.upsample, 0.0)
        found = []
        for rect, score in zip(rects, scores, strict=True):
            box = (
                max(0, round(rect.left() / scale)),
                max(0, round(rect.top() / scale)),
                min(width, round((rect.right() + 1) / scale)),
                min(height, round((rect.bottom() + 1) / scale)),
            )
            if box[2] > box[0] and box[3] > box[1]:
                found.append(Detection(box, float(score)))
        return found
