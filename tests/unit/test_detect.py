"""The three detectors on real photos: each face found once, YuNet's boxes aligned like HOG's, no face from nothing."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from lfw import nearest_centre
from support.data import face_photos, need_data

from edge.unit.vision import FacePipeline, VisionSettings
from edge.unit.vision.detect import HogThenYunet, iou
from edge.unit.vision.media import read_image

KINDS = ("hog", "yunet", "hog+yunet")


@pytest.fixture(scope="module")
def pipelines():
    return {kind: FacePipeline(VisionSettings(detector=kind)) for kind in KINDS}


def test_every_detector_finds_the_one_face_of_each_sample_photo_and_aligns_it_alike(pipelines):
    for path in face_photos():
        frame = read_image(path)
        found = {kind: p.process(frame) for kind, p in pipelines.items()}
        assert {kind: len(faces) for kind, faces in found.items()} == dict.fromkeys(KINDS, 1), path
        (hog,), (yunet,) = found["hog"], found["yunet"]
        # YuNet's box, reshaped to what the shape predictor expects, gives the same chip to within noise
        assert float(hog.embedding @ yunet.embedding) > 0.99, path
        assert iou(hog.box, yunet.box) > 0.6, path


@pytest.mark.parametrize(
    "scene, hog, yunet",
    [
        ("two_people.jpg", 2, 2),
        ("obama_and_biden.jpg", 2, 3),  # YuNet also finds the girl at the bottom edge, looking down
        ("kit_with_rose.jpg", 2, 2),
        ("longoria_cooper.jpg", 2, 2),
        ("obama_partial_face.jpg", 1, 1),
    ],
)
def test_scenes_give_the_faces_they_show_and_the_combination_counts_each_once(pipelines, scene, hog, yunet):
    frame = read_image(need_data("scenes", scene))
    found = {kind: p.process(frame) for kind, p in pipelines.items()}
    assert (len(found["hog"]), len(found["yunet"]), len(found["hog+yunet"])) == (hog, yunet, max(hog, yunet))
    combined = [f.box for f in found["hog+yunet"]]
    assert all(iou(a, b) < 0.3 for i, a in enumerate(combined) for b in combined[i + 1 :])
    for face in found["hog+yunet"]:
        left, top, right, bottom = face.box
        assert 0 <= left < right <= frame.shape[1] and 0 <= top < bottom <= frame.shape[0]
        assert face.quality.size == right - left
        assert 0.0 <= face.quality.frontalness <= 1.0
        assert face.quality.sharpness > 0


def test_no_detector_finds_a_face_in_a_blank_or_noisy_frame(pipelines):
    blank = np.full((720, 1280, 3), 128, np.uint8)
    noise = cv2.GaussianBlur(np.random.default_rng(1).integers(0, 256, (720, 1280, 3), dtype=np.uint8), (0, 0), 3)
    for kind, pipeline in pipelines.items():
        assert pipeline.process(blank) == [] and pipeline.process(noise) == [], kind


HOG_MISSES = [  # lfw_dev photos where HOG (colour, upsample 0) finds no face
    "George_Clooney/George_Clooney_0002.jpg",  # turned (frontalness 0.2)
    "Richard_Myers/Richard_Myers_0003.jpg",
    "Chung_Mong-hun/Chung_Mong-hun_0001.jpg",
    "Ken_Watanabe/Ken_Watanabe_0001.jpg",
]


@pytest.mark.parametrize("photo", HOG_MISSES)
def test_a_face_hog_misses_is_found_by_the_combination_and_matches_its_person(pipelines, photo):
    path = need_data("lfw_dev", "images", *photo.split("/"))
    frame = read_image(path)
    assert pipelines["hog"].process(frame) == []
    (found,) = pipelines["hog+yunet"].process(frame)
    others = [read_image(p) for p in sorted(path.parent.glob("*.jpg")) if p != path]
    similarities = [float(found.embedding @ nearest_centre(pipelines["hog"].process(f), f).embedding) for f in others]
    assert others and min(similarities) >= pipelines["hog"].threshold, similarities


def test_the_combination_adds_yunet_boxes_only_where_hog_found_nothing(pipelines):
    detector = pipelines["hog+yunet"].detector
    assert isinstance(detector, HogThenYunet)
    frame = read_image(need_data("scenes", "obama_and_biden.jpg"))
    combined = detector.detect(frame, "bgr")
    assert [d.by for d in combined] == ["hog", "hog", "yunet"]  # the two men from HOG, the girl from YuNet
    for box in (d.box for d in detector.hog.detect(frame, "bgr")):
        assert sum(iou(box, d.box) > 0.5 for d in combined) == 1
