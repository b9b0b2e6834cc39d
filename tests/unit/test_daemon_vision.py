"""The daemon's vision against a real mosquitto: two people passing close on video, a detector that fails on one
burst, bursts that wait while vision is busy. The rest of the daemon: test_daemon.py."""

from __future__ import annotations

import itertools
import json
import threading

from support.daemon import InThread
from support.data import need_data
from support.mqtt import Subscriber
from support.scenes import passing_close
from support.unit_config import photos_on_demand, write_config
from support.wait import wait_until

from edge.core import facehash, schemes
from edge.unit.daemon import Parts
from edge.unit.vision import FacePipeline
from edge.unit.vision.media import read_image
from edge.unit.vision.pipeline import settings_detector


def test_two_people_passing_close_on_video_give_two_facehashes_in_every_burst(tmp_path, broker):
    import cv2

    clip, _ = passing_close()
    video = tmp_path / "passing.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10, (1280, 720))
    for frame in clip:
        writer.write(frame)
    writer.release()
    # bursts of 7 frames from a 20-frame loop start on every frame in turn, the crossing included
    source = f"{{kind: video, path: {video}, realtime: false, loop: true}}"
    burst = "{frames: 7, duration: 0.1, cooldown: 0}"
    path = write_config(tmp_path, broker.port, "{kind: manual}", source, burst, scheme="fh1")  # fh2 is the default
    subscriber = Subscriber(broker.port, "traceon/+/+/+/events", "passing-watch")
    unit = InThread(path)
    try:
        for n in range(20):
            unit.daemon.inbox.fire("manual")
            subscriber.wait_for(lambda s, n=n: len(s.events()) > n, 60, f"the event of burst {n}")
    finally:
        unit.stop()
        subscriber.close()
    hasher = schemes.hasher(facehash.load_key(tmp_path / "unit.key"), facehash.load_scheme(), "fh1")
    pipeline = FacePipeline()
    references = [
        hasher.hash(pipeline.process(read_image(need_data("faces", name, "1.jpg")))[0].embedding)
        for name in ("barack_obama", "joe_biden")
    ]
    for event in subscriber.events():
        codes = [p["facehash"] for p in event["persons"]]
        assert len(codes) == 2, event
        assert (event["schema_version"], event["scheme"]) == (3, "fh1")
        assert {facehash.parse(code).scheme for code in codes} == {"fh1"}
        for reference in references:
            assert sum(hasher.same_person(reference, code) for code in codes) == 1, event


class FailsOnce:
    """The real default detector (one per vision worker), failing once, on the third frame any of them is given,
    as a damaged frame or model might."""

    calls = itertools.count(1)

    def __init__(self, settings, model):
        self.real = settings_detector(settings, model)

    def part(self, by):
        return self

    def detect(self, frame, order):
        if next(FailsOnce.calls) == 3:  # the second burst
            raise RuntimeError("the detector gave up on this frame")
        return self.real.detect(frame, order)


def test_a_detector_failing_on_a_burst_costs_that_burst_only_and_health_counts_it(tmp_path, broker):
    path = photos_on_demand(tmp_path, broker.port, "{frames: 2, duration: 0.1, cooldown: 0}")
    health = Subscriber(broker.port, "traceon/+/+/+/health", "health-watch")

    def failed() -> list[int]:
        return [json.loads(p)["dropped"]["events_failed"] for _, p, _ in health.messages]

    unit = InThread(path, parts=Parts(detector=FailsOnce))
    try:
        unit.daemon.inbox.fire("manual")
        wait_until(lambda: len(unit.delivered) == 1, 60, "the first burst's event")
        unit.daemon.inbox.fire("manual")  # its first frame fails
        health.wait_for(lambda s: 1 in failed(), 30, "health to count the failed burst")
        unit.daemon.inbox.fire("manual")
        wait_until(lambda: len(unit.delivered) == 2, 60, "the third burst's event")
    finally:
        unit.stop()
        health.close()
    assert all(len(e["persons"]) == 2 for e in unit.delivered)


class Gated:
    """The real detector, held until the test opens the gate: vision stays busy while triggers come."""

    gate = threading.Event()

    def __init__(self, settings, model):
        self.real = settings_detector(settings, model)

    def part(self, by):
        return self

    def detect(self, frame, order):
        assert Gated.gate.wait(60)
        return self.real.detect(frame, order)


def test_bursts_captured_while_vision_is_busy_wait_their_turn_and_only_past_the_queue_are_dropped(tmp_path, broker):
    path = photos_on_demand(tmp_path, broker.port, "{frames: 1, duration: 0.05, cooldown: 0, queue: 3}")
    health = Subscriber(broker.port, "traceon/+/+/+/health", "queue-watch")

    def latest() -> dict:
        reports = [json.loads(p) for _, p, _ in health.messages]
        return reports[-1] if reports else {"bursts": {"captured": 0}}

    Gated.gate.clear()
    unit = InThread(path, parts=Parts(detector=Gated))
    try:
        for n in range(1, 6):  # one held in vision, three queued, the fifth finds the queue full
            unit.daemon.inbox.fire("manual")
            health.wait_for(
                lambda s, n=n: latest()["bursts"]["captured"] == n,
                15,
                lambda n=n: f"health to count {n} bursts captured (it says {latest()})",
            )
        health.wait_for(
            lambda s: latest()["dropped"]["bursts_while_busy"] == 1,
            15,
            lambda: f"health to count 1 burst dropped while busy (it says {latest()})",
        )
        assert latest()["bursts"]["waiting"] == 3
        Gated.gate.set()
        wait_until(lambda: len(unit.delivered) == 4, 60, "the 4 queued bursts' events")
    finally:
        Gated.gate.set()
        unit.stop()
        health.close()
    assert [len(e["persons"]) for e in unit.delivered] == [1, 1, 1, 1]  # one photo a burst, each with its face
