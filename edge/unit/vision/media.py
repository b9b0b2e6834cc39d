"""Image and video files as frames, for developers' tools (the daemon reads cameras instead)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from edge.core.errors import FrameError
from edge.unit.vision.frame import check_size

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v"}

Image.MAX_IMAGE_PIXELS = None  # check_size speaks first, with a clearer message


def read_image(path: Path) -> np.ndarray:
    """An 8-bit BGR or gray frame from an image file; 16-bit, palette and alpha images are converted."""
    try:
        if path.stat().st_size == 0:
            raise FrameError("the file is empty")
        with Image.open(path) as image:
            check_size(*image.size)  # from the header alone: a huge image is refused before decoding
            image = ImageOps.exif_transpose(image)  # decodes; a truncated file fails here
            return to_frame(image)
    except UnidentifiedImageError:
        raise FrameError("not an image file (unknown or damaged format)") from None
    except OSError as e:
        raise FrameError(f"damaged or unreadable image: {e}") from None


def to_frame(image: Image.Image) -> np.ndarray:
    """An opened image as the pipeline's frame (decodes it): read_image's, and the photo query's from memory."""
    if image.mode.startswith("I"):  # 16- or 32-bit integer gray: keep the top 8 of 16 bits
        wide = np.asarray(image).astype(np.uint32)
        return (np.minimum(wide, 65535) >> 8).astype(np.uint8)
    if image.mode == "L":
        return np.asarray(image).copy()
    if image.mode != "RGB":
        image = image.convert("RGB")
    return np.ascontiguousarray(np.asarray(image)[:, :, ::-1])


def video_frames(path: Path, every: int = 1) -> Iterator[tuple[int, np.ndarray]]:
    """(frame index, BGR frame) for every `every`-th frame."""
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise FrameError("not a video this build of OpenCV can open")
    try:
        index = 0
        while True:
            ok = capture.grab()
            if not ok:
                break
            if index % every == 0:
                ok, frame = capture.retrieve()
                if ok:
                    yield index, frame
            index += 1
    finally:
        capture.release()


def expand(paths: list[Path]) -> Iterator[Path]:
    """Named files as given; folders recursively, keeping image and video files, in sorted order."""
    for path in paths:
        if path.is_dir():
            yield from sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES
            )
        else:
            yield path


def is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_SUFFIXES
