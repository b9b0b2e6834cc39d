"""Where the time of one burst goes: each step of a 10-frame 1280×720 burst with one face, one thread.

    python tools/profile_burst.py [--repeat 10]

Each step is timed alone on the same data (median of `--repeat`), in the order a burst takes them: decode
(an `images` or `video` source only: a camera hands over raw frames), the working copy, HOG and YuNet over the
whole frame, HOG near a followed face (with the unit's default `vision.search_every` of 3, frames 0, 3, 6 and
9 are searched whole and the six between only near the face), the 5-point landmarks, the chip, the quality
numbers, quantise + invoke of the int8 model for the burst's faces in one call, grouping, hashing, the event
(build + schema check + JSON), the outbox commit (fsync), and publish → PUBACK on a real mosquitto on
loopback. The per-burst column is what ten frames cost.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

cv2.setNumThreads(1)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

import paho.mqtt.client as mqtt  # noqa: E402
from bench_embed import frame_with_face  # noqa: E402
from servers import Broker  # noqa: E402

from edge.core import facehash  # noqa: E402
from edge.unit import config, sighting  # noqa: E402
from edge.unit.outbox import Outbox  # noqa: E402
from edge.unit.persons import group  # noqa: E402
from edge.unit.vision import FacePipeline, VisionSettings  # noqa: E402
from edge.unit.vision.detect import detect_near, working_copy  # noqa: E402
from edge.unit.vision.quality import measure  # noqa: E402

FRAMES = 10
SEARCH_EVERY = config.VisionConfig.model_fields["search_every"].default  # the unit's
WHOLE = len(range(0, FRAMES, SEARCH_EVERY))


def median_ms(fn, repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    pipeline = FacePipeline(VisionSettings(threads=1))
    hog, yunet = pipeline.detector.hog, pipeline.detector.yunet
    frame = frame_with_face(1280, 720)
    jpeg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 90])[1]
    rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    (detection,) = hog.detect(frame, "bgr")
    shape = pipeline.aligner.landmarks(rgb, detection.box)
    chip = pipeline.aligner.chip(rgb, shape)
    points = np.array([(p.x, p.y) for p in shape.parts()], np.float32)
    burst = [pipeline.process(frame) for _ in range(FRAMES)]
    chips = np.stack([f.chip for faces in burst for f in faces])
    hasher = facehash.FaceHasher(facehash.Key(b"\x05" * 32), facehash.load_scheme())
    persons = group(burst, pipeline.threshold)
    identity = sighting.Identity("s", "c", "d", pipeline.files.model_id)

    def event() -> dict:
        return sighting.build(identity, "manual", time.time(), time.time(), FRAMES, persons, hasher)

    per_frame = {  # step: (time it, how many of the burst's frames take it)
        "decode a JPEG (images/video sources only)": (lambda: cv2.imdecode(jpeg, cv2.IMREAD_COLOR), FRAMES),
        "colour and working copy": (lambda: working_copy(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), 640), FRAMES),
        f"HOG detection, whole frame ({WHOLE} frames)": (lambda: hog.detect(frame, "bgr"), WHOLE),
        f"YuNet detection, whole frame ({WHOLE} frames)": (lambda: yunet.detect(frame, "bgr"), WHOLE),
        f"HOG near the face it follows ({FRAMES - WHOLE} frames)": (
            lambda: detect_near(pipeline.detector, frame, "bgr", [(detection.box, "hog")], 640),
            FRAMES - WHOLE,
        ),
        "5-point landmarks": (lambda: pipeline.aligner.landmarks(rgb, detection.box), FRAMES),
        "aligned chip": (lambda: pipeline.aligner.chip(rgb, shape), FRAMES),
        "quality numbers": (lambda: measure(detection, points, chip), FRAMES),
    }
    per_burst = {
        f"quantise + invoke, {len(chips)} chips in one call": lambda: pipeline.embedder.embed(chips),
        "group into persons": lambda: group(burst, pipeline.threshold),
        "hash each person": lambda: [hasher.hash(p.embedding) for p in persons],
        "event: build, schema check, JSON": lambda: json.dumps(event()),
    }
    rows = []
    for name, (fn, frames) in per_frame.items():
        ms = median_ms(fn, args.repeat)
        rows.append((name, ms, ms * frames))
    rows += [(name, None, median_ms(f, args.repeat)) for name, f in per_burst.items()]
    with tempfile.TemporaryDirectory() as tmp:
        outbox = Outbox(Path(tmp) / "outbox.sqlite", 100_000, 1 << 30)
        rows.append(("outbox commit (fsync)", None, median_ms(lambda: outbox.put(event()), args.repeat)))
        broker = Broker(Path(tmp))
        broker.start()
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        client.connect("127.0.0.1", broker.port)
        client.loop_start()
        body = json.dumps(event())

        def publish() -> None:
            client.publish("t/events", body, qos=1).wait_for_publish(5)

        rows.append(("publish → PUBACK, loopback", None, median_ms(publish, args.repeat)))
        client.loop_stop()
        client.disconnect()
        broker.stop()
        outbox.close()
    total = sum(r[2] for r in rows)
    print(
        f"one burst of {FRAMES} frames, 1280×720, one face, one thread, searched whole every {SEARCH_EVERY}: "
        f"median of {args.repeat}"
    )
    print(f"  {'step':<52} {'per frame':>10} {'per burst':>10}  share")
    for name, frame_ms, burst_ms in rows:
        each = f"{frame_ms:7.2f} ms" if frame_ms is not None else " " * 10
        print(f"  {name:<52} {each:>10} {burst_ms:7.2f} ms  {100 * burst_ms / total:4.1f}%")
    print(f"  {'total (decode included)':<52} {'':>10} {total:7.2f} ms")


if __name__ == "__main__":
    main()
