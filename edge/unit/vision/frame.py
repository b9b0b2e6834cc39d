"""What the pipeline accepts as a frame, and conversions between colour orders."""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np

from edge.core.errors import FrameError

ColorOrder = Literal["bgr", "rgb"]

MIN_SIDE = 32  # smaller than any face the detector can find
MAX_PIXELS = 64_000_000  # the largest Raspberry Pi-class camera sensor is 64 MP


def check_size(width: int, height: int) -> None:
    if min(width, height) < MIN_SIDE:
        raise FrameError(f"image is {width}×{height} pixels, too small to hold a face (minimum {MIN_SIDE}×{MIN_SIDE})")
    if width * height > MAX_PIXELS:
        raise FrameError(
            f"image is {width}×{height} pixels ({width * height / 1e6:.0f} MP), larger than the "
            f"{MAX_PIXELS / 1e6:.0f} MP this device handles; scale it down first"
        )


def check_frame(frame: object) -> np.ndarray:
    """Return the frame if it is an 8-bit gray (H×W or H×W×1) or 3-channel colour image of sane size."""
    if not isinstance(frame, np.ndarray):
        raise FrameError(f"a frame must be a NumPy array, got {type(frame).__name__}")
    if frame.dtype != np.uint8:
        raise FrameError(f"a frame must hold 8-bit pixels, got {frame.dtype}")
    if frame.ndim == 3 and frame.shape[2] == 1:
        frame = frame[:, :, 0]
    if not (frame.ndim == 2 or (frame.ndim == 3 and frame.shape[2] == 3)):
        raise FrameError(f"a frame must be gray (H×W) or colour (H×W×3), got shape {frame.shape}")
    check_size(frame.shape[1], frame.shape[0])
    return frame


def to_gray(frame: np.ndarray, order: ColorOrder) -> np.ndarray:
    if frame.ndim == 2:
        return frame
    return cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY if order == "bgr" else cv2.COLOR_RGB2GRAY)


def to_rgb(frame: np.ndarray, order: ColorOrder) -> np.ndarray:
    if frame.ndim == 2:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)
    if order == "bgr":
        return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    return np.ascontiguousarray(frame)
