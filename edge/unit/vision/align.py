"""5-point landmarks on the full-resolution frame and dlib's 150×150 aligned chip.

The chip is what dlib's face recognition network was trained on: `get_face_chip` with 25% padding,
the same call dlib's own `compute_face_descriptor` makes.
"""

from __future__ import annotations

from pathlib import Path

import dlib
import numpy as np

from edge.unit.vision.detect import Box

CHIP_SIZE = 150
CHIP_PADDING = 0.25


class Aligner:
    def __init__(self, landmarks_path: str | Path):
        self._predictor = dlib.shape_predictor(str(landmarks_path))

    def landmarks(self, rgb: np.ndarray, box: Box) -> dlib.full_object_detection:
        return self._predictor(rgb, dlib.rectangle(box[0], box[1], box[2] - 1, box[3] - 1))

    @staticmethod
    def chip(rgb: np.ndarray, shape: dlib.full_object_detection) -> np.ndarray:
        return dlib.get_face_chip(rgb, shape, size=CHIP_SIZE, padding=CHIP_PADDING)


def points(shape: dlib.full_object_detection) -> np.ndarray:
    return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)
