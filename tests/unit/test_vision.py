"""The face pipeline on real photos: detection, alignment, int8 embeddings against dlib's float model."""

from __future__ import annotations

import itertools
import threading
from typing import ClassVar

import numpy as np
import pytest
from support.data import face_photos, need_data
from support.scenes import passing_close
from support.wait import wait_until

from edge.core.errors import FrameError
from edge.unit.vision.frame import check_frame
from edge.unit.vision.media import read_image

DLIB_THRESHOLD = 0.6  # dlib's published same-person rule: Euclidean distance of raw descriptors < 0.6


@pytest.fixture(scope="module")
def faces_of_photos(pipeline):
    found = {}
    for path in face_photos():
        faces = pipeline.process(read_image(path))
        assert len(faces) == 1, f"{path} holds one face, found {len(faces)}"
        found[path] = faces[0]
    return found


def test_int8_and_dlib_float_decide_every_pair_alike(pipeline, faces_of_photos, dlib_float):
    paths = sorted(faces_of_photos)
    ours = {p: faces_of_photos[p].embedding for p in paths}
    theirs = {p: np.array(dlib_float.compute_face_descriptor(faces_of_photos[p].chip)) for p in paths}
    disagreements, wrong = [], []
    for a, b in itertools.combinations(paths, 2):
        same_int8 = float(ours[a] @ ours[b]) >= pipeline.threshold
        same_dlib = float(np.linalg.norm(theirs[a] - theirs[b])) < DLIB_THRESHOLD
        if same_int8 != same_dlib:
            disagreements.append((a.parent.name, a.name, b.parent.name, b.name))
        if same_int8 != (a.parent == b.parent):
            wrong.append((a.parent.name, a.name, b.parent.name, b.name))
    assert len(paths) * (len(paths) - 1) // 2 == 210
    assert disagreements == []
    assert wrong == []


def test_int8_embeddings_are_unit_length_and_close_to_dlib(faces_of_photos, dlib_float):
    for face in faces_of_photos.values():
        ref = np.array(dlib_float.compute_face_descriptor(face.chip))
        assert face.embedding.shape == (128,)
        assert abs(np.linalg.norm(face.embedding) - 1) < 1e-5
        assert float(face.embedding @ (ref / np.linalg.norm(ref))) > 0.997


def test_boxes_are_in_full_resolution_pixels_whatever_the_working_width(pipeline):
    from edge.unit.vision import FacePipeline, VisionSettings

    frame = read_image(need_data("faces", "barack_obama", "3.jpg"))
    narrow = FacePipeline(VisionSettings(working_width=320))
    wide = FacePipeline(VisionSettings(working_width=frame.shape[1]))
    (a,), (b,) = narrow.process(frame), wide.process(frame)
    assert np.abs(np.subtract(a.box, b.box)).max() <= 0.1 * (b.box[2] - b.box[0])  # a scale slip would be ~100%
    assert float(a.embedding @ b.embedding) > pipeline.threshold


def test_gray_and_rgb_frames_find_the_same_face(pipeline):
    bgr = read_image(need_data("faces", "joe_biden", "1.jpg"))
    (from_bgr,) = pipeline.process(bgr, "bgr")
    (from_rgb,) = pipeline.process(bgr[:, :, ::-1].copy(), "rgb")
    (from_gray,) = pipeline.process(bgr.mean(axis=2).astype(np.uint8))
    assert from_bgr.box == from_rgb.box
    assert float(from_bgr.embedding @ from_rgb.embedding) > 0.9999
    assert float(from_bgr.embedding @ from_gray.embedding) > pipeline.threshold


def test_a_frame_with_no_face_gives_no_faces(pipeline):
    assert pipeline.process(np.full((480, 640, 3), 128, np.uint8)) == []


@pytest.mark.parametrize(
    "frame, message",
    [
        (np.zeros((480, 640, 3), np.float32), "8-bit"),
        (np.zeros((480, 640, 3), np.uint16), "8-bit"),
        (np.zeros((480, 640, 4), np.uint8), "shape"),
        (np.zeros((480,), np.uint8), "shape"),
        (np.zeros((1, 1, 3), np.uint8), "too small"),
        ("not an array", "NumPy array"),
    ],
)
def test_unusable_frames_are_refused_with_a_reason(pipeline, frame, message):
    with pytest.raises(FrameError, match=message):
        pipeline.process(frame)


def test_a_single_channel_frame_is_taken_as_gray():
    assert check_frame(np.zeros((64, 64, 1), np.uint8)).shape == (64, 64)


def test_a_burst_embeds_in_one_batch_like_one_by_one(pipeline):
    faces = []
    for name in ("1.jpg", "2.jpg", "3.jpg"):
        faces += pipeline.find_faces(read_image(need_data("faces", "kit_harington", name)))
    together = np.stack([f.embedding for f in pipeline.embed(faces)])
    alone = np.stack([pipeline.embed([f])[0].embedding for f in faces])
    assert np.abs(together - alone).max() < 1e-6


def test_faces_found_by_several_threads_are_those_found_one_frame_at_a_time(pipeline):
    from edge.unit.vision import FacePipeline, VisionSettings

    frames = [read_image(p) for p in face_photos()[:8]] + [read_image(need_data("scenes", "two_people.jpg"))]
    threaded = FacePipeline(VisionSettings(workers=2))
    try:
        together = threaded.find_faces_in(frames)
    finally:
        threaded.close()
    alone = [pipeline.find_faces(f) for f in frames]
    assert [[f.box for f in faces] for faces in together] == [[f.box for f in faces] for faces in alone]
    pairs = [(a, b) for x, y in zip(together, alone, strict=True) for a, b in zip(x, y, strict=True)]
    assert all(np.array_equal(a.chip, b.chip) for a, b in pairs)


def boxes_per_frame(frames, **settings) -> list[list[tuple]]:
    from edge.unit.vision import FacePipeline, VisionSettings

    pipeline = FacePipeline(VisionSettings(**settings))
    try:
        return [[f.box for f in faces] for faces in pipeline.find_faces_in(frames)]
    finally:
        pipeline.close()


def test_frames_between_whole_searches_find_the_faces_near_those_found(pipeline):
    from edge.unit.vision import FacePipeline, VisionSettings
    from edge.unit.vision.detect import iou

    frames, truth = passing_close()  # heads move 0.3 of a face a frame, and hide each other as they pass
    searching = FacePipeline(VisionSettings(search_every=3, workers=2))
    try:
        near = searching.find_faces_in(frames)
    finally:
        searching.close()
    # faces the last whole search found are followed, no more: one coming out from behind waits for the next
    assert all(len(near[i]) <= min(len(truth[i]), len(near[i - i % 3])) for i in range(len(frames)))
    assert sum(map(len, near)) >= 0.9 * sum(map(len, truth))
    for frame, faces in zip(frames, near, strict=True):
        whole = pipeline.embed(pipeline.find_faces(frame))
        for face in pipeline.embed(faces):  # the same person as the whole search found there
            same_place = max(whole, key=lambda w, f=face: iou(w.box, f.box))
            assert float(face.embedding @ same_place.embedding) >= pipeline.threshold


def test_a_face_that_comes_into_view_between_whole_searches_is_found_at_the_next():
    photo = read_image(need_data("faces", "barack_obama", "1.jpg"))
    empty = np.full_like(photo, 110)
    frames = [empty, photo, photo, photo, photo]
    assert [len(b) for b in boxes_per_frame(frames, search_every=1)] == [0, 1, 1, 1, 1]
    assert [len(b) for b in boxes_per_frame(frames, search_every=3)] == [0, 0, 0, 1, 1]
    assert [len(b) for b in boxes_per_frame(frames, search_every=3, workers=2)] == [0, 0, 0, 1, 1]


def test_near_searches_on_workers_find_what_they_find_one_frame_at_a_time():
    frames, _ = passing_close()
    assert boxes_per_frame(frames, search_every=4, workers=2) == boxes_per_frame(frames, search_every=4)


def test_a_burst_read_and_let_go_frees_its_frames_at_once():
    """No reference cycle through the workers' futures: a unit taking bursts all day must not wait for the garbage
    collector to give back each burst's frames (a cycle cost 190 MB of peak memory in tools/bench_burst.py)."""
    import gc
    import weakref

    from edge.unit.vision import FacePipeline, VisionSettings

    photo = read_image(need_data("faces", "barack_obama", "1.jpg"))
    pipeline = FacePipeline(VisionSettings(search_every=3, workers=2))
    gc.disable()
    try:
        burst = pipeline.burst()
        frames = [photo.copy() for _ in range(4)]
        for frame in frames:
            burst.add(frame)
        assert [len(f) for f in burst.faces()] == [1, 1, 1, 1]
        kept = [weakref.ref(frame) for frame in frames]
        del burst, frames, frame
        assert [ref() for ref in kept] == [None] * 4
    finally:
        gc.enable()
        pipeline.close()


class Watched:
    """The real detector, noting each whole and near search; either can be held, and a whole one can fail."""

    searches: ClassVar[list[str]] = []
    whole_gate, near_gate = threading.Event(), threading.Event()
    fail = False

    def __init__(self, settings, model):
        from edge.unit.vision.pipeline import settings_detector

        self.real = settings_detector(settings, model)

    @classmethod
    def reset(cls, fail=False):
        cls.searches, cls.fail = [], fail
        cls.whole_gate.set()
        cls.near_gate.set()

    def detect(self, frame, order):
        assert Watched.whole_gate.wait(30)
        Watched.searches.append("whole")
        if Watched.fail:
            raise RuntimeError("the detector gave up on this frame")
        return self.real.detect(frame, order)

    def part(self, by):
        real = self.real.part(by)

        class Near:
            def detect(self, frame, order):
                Watched.searches.append("near")
                assert Watched.near_gate.wait(30)
                return real.detect(frame, order)

        return Near()


def watched_pipeline():
    from edge.unit.vision import FacePipeline, VisionSettings

    return FacePipeline(VisionSettings(search_every=3, workers=2), detector=Watched)


def test_a_failed_whole_search_fails_the_burst_without_searching_the_frames_after_it():
    Watched.reset(fail=True)
    pipeline = watched_pipeline()
    photo = read_image(need_data("faces", "barack_obama", "1.jpg"))
    try:
        burst = pipeline.burst()
        for _ in range(3):
            burst.add(photo)
        with pytest.raises(RuntimeError, match="gave up"):
            burst.faces()
    finally:
        pipeline.close()
    assert Watched.searches == ["whole"]


def test_a_dropped_burst_frees_the_workers_of_the_near_searches_still_waiting():
    Watched.reset()
    Watched.near_gate.clear()
    pipeline = watched_pipeline()
    photo = read_image(need_data("faces", "barack_obama", "1.jpg"))
    try:
        burst = pipeline.burst()
        for _ in range(6):  # two whole searches, each followed by two near ones: two run, two wait for a worker
            burst.add(photo)
        wait_until(
            lambda: Watched.searches.count("whole") == 2 and Watched.searches.count("near") == 2,
            30,
            lambda: f"two whole and two near searches under way (so far {Watched.searches})",
        )
        burst.cancel()
        Watched.near_gate.set()
    finally:
        pipeline.close()
    assert Watched.searches.count("near") == 2


def test_a_pipeline_closed_during_a_burst_fails_its_faces_rather_than_leaving_them_pending():
    Watched.reset()
    Watched.whole_gate.clear()
    pipeline = watched_pipeline()
    photo = read_image(need_data("faces", "barack_obama", "1.jpg"))
    burst = pipeline.burst()
    for _ in range(3):
        burst.add(photo)
    closing = threading.Thread(target=pipeline.close)
    closing.start()
    wait_until(lambda: pipeline._pool._shutdown, 10, "the workers to be told to stop")
    Watched.whole_gate.set()  # the whole search ends after the workers were told to stop: no near search starts
    closing.join(30)
    with pytest.raises(RuntimeError, match="shutdown"):
        burst.faces()
