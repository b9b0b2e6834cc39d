"""Per-face numbers that later stages use to prefer good views of a person."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

from edge.unit.vision.detect import Detection


@dataclass(frozen=True)
class Quality:
    score: float  # detector margin
    size: int  # face box width in full-resolution pixels
    sharpness: float  # variance of the Laplacian of the gray chip: low is blurred
    frontalness: float  # 1 = nose centred between the eyes, 0 = profile
    profile: bool = False  # the detector saw a head in full profile: dlib's landmarks cannot align it

    def as_dict(self) -> dict:
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(self).items()}


def frontalness(points: np.ndarray) -> float:
    """From dlib's 5 points (two corners per eye, then the base of the nose)."""
    eye_a, eye_b = points[0:2].mean(axis=0), points[2:4].mean(axis=0)
    axis = eye_b - eye_a
    span = float(np.linalg.norm(axis))
    if span < 1e-6:
        return 0.0
    offset = float(np.dot(points[4] - (eye_a + eye_b) / 2, axis / span))
    return max(0.0, 1.0 - 2.0 * abs(offset) / span)


def sharpness(chip: np.ndarray) -> float:
    gray = cv2.cvtColor(chip, cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(gray, cv2.CV_32F).var())


def measure(detection: Detection, points: np.ndarray, chip: np.ndarray) -> Quality:
    left, _, right, _ = detection.box
    return Quality(detection.score, right - left, sharpness(chip), frontalness(points), detection.profile)
