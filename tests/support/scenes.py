"""Scenes no recording shows, composed from the sample photos."""

from __future__ import annotations

from support.data import need_data


def passing_close(frames: int = 20) -> tuple[list, list[dict[str, int]]]:
    """Two people walking past each other at one doorway, composed from the sample photos (no recording shows
    it): Obama from the left, Biden from the right, heads at the same height. Each hides the other as they
    pass, Obama first and then Biden, so one steps into the box the other held a frame before.

    Returns the frames and, for each, where each visible head's centre is (x): the truth to check against."""
    import cv2
    import numpy as np

    from edge.unit.vision import FacePipeline, VisionSettings
    from edge.unit.vision.media import read_image

    pipeline = FacePipeline(VisionSettings(detector="hog"))

    def head(person: str) -> np.ndarray:
        photo = read_image(need_data("faces", person, "1.jpg"))
        (face,) = pipeline.process(photo)
        left, top, right, bottom = face.box
        side = right - left
        crop = photo[max(0, top - side // 2) : bottom + side // 3, max(0, left - side // 3) : right + side // 3]
        return cv2.resize(crop, None, fx=260 / crop.shape[1], fy=260 / crop.shape[1], interpolation=cv2.INTER_AREA)

    obama, biden = head("barack_obama"), head("joe_biden")
    noise = np.random.default_rng(3).integers(60, 200, (720, 1280, 3), dtype=np.uint8)
    background = cv2.GaussianBlur(noise, (0, 0), 8)
    span = 1280 - 300
    composed, truth = [], []
    for t in range(frames):
        frame = background.copy()
        xa, xb = 40 + span * t // (frames - 1), 1280 - 300 - span * t // (frames - 1)
        behind_first = [("joe_biden", biden, xb), ("barack_obama", obama, xa)]
        if t >= frames // 2:
            behind_first.reverse()
        for _, head_image, x in behind_first:
            frame[150 : 150 + head_image.shape[0], x : x + head_image.shape[1]] = head_image
        centres = {name: x + 130 for name, _, x in behind_first}
        if abs(xa - xb) < 150:  # the one in front hides the other's face
            centres = {behind_first[1][0]: centres[behind_first[1][0]]}
        composed.append(frame)
        truth.append(centres)
    return composed, truth
