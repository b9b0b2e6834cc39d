"""Benchmark: trigger → PUBACK for a 10-frame burst of 1280×720 frames with one face, and the daemon's peak RSS.

    python tools/bench_burst.py [--bursts 25]

Starts mosquitto on a free loopback port and `traceon-edge run` as its own process (a `video` source looping
over a 1280×720 mp4 of a real face walking across and back, a fifth of the face a frame; manual trigger, no
cooldown, 10 consecutive frames a burst; `--search-every` sets `vision.search_every`, default the unit's),
sends SIGUSR1 and times until the daemon prints the event, which it does once the broker's PUBACK is
in. Baseline, in this process: the same 10 frames through detect, embed, group and hash alone.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT))

from bench_embed import frame_with_face  # noqa: E402

from edge.core import facehash  # noqa: E402
from edge.unit.config import VisionConfig  # noqa: E402
from edge.unit.persons import group  # noqa: E402
from edge.unit.vision import FacePipeline, VisionSettings  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def baseline_ms(frames: list[np.ndarray], repeat: int) -> float:
    pipeline = FacePipeline(VisionSettings(threads=2))
    hasher = facehash.FaceHasher(facehash.Key(b"b" * 32), facehash.load_scheme())
    times = []
    for _ in range(repeat + 1):
        t = time.perf_counter()
        faces = [pipeline.find_faces(frame) for frame in frames]
        pipeline.embed([f for fs in faces for f in fs])
        for person in group(faces, pipeline.threshold):
            hasher.hash(person.embedding)
        times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times[1:])


def door_queue(unit: subprocess.Popen, work: Path, people: int = 10, apart: float = 0.3) -> str:
    """A queue at a door: `people` triggers `apart` seconds apart; how many bursts were taken and published."""
    published = 0
    for _ in range(people):
        unit.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + apart
        while (left := deadline - time.monotonic()) > 0:
            if select.select([unit.stdout], [], [], left)[0]:
                published += '"event_id"' in unit.stdout.readline()
    while published < people and select.select([unit.stdout], [], [], 10)[0]:
        published += '"event_id"' in unit.stdout.readline()
    time.sleep(1.5)  # the next health report (every second) counts the bursts
    health = json.loads((work / "outbox.health.json").read_text())
    return (
        f"{people} triggers {apart * 1000:.0f} ms apart: {published} events published, "
        f"{health['dropped']['bursts_while_busy']} bursts dropped while vision was busy, "
        f"{health['dropped']['triggers_coalesced']} triggers coalesced in all"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bursts", type=int, default=25)
    parser.add_argument("--search-every", type=int, default=VisionConfig.model_fields["search_every"].default)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-burst-"))
    frames = [frame_with_face(1280, 720, step) for step in range(10)]
    video = cv2.VideoWriter(str(work / "doorway.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10, (1280, 720))
    for frame in frames + frames[::-1]:  # across and back: the loop never jumps
        video.write(frame)
    video.release()
    facehash.write_key_file(work / "unit.key")
    port = free_port()
    (work / "mosquitto.conf").write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n")
    config = work / "unit.yaml"
    config.write_text(
        "unit: {site: bench, checkpoint: door, device: d1}\ntrigger: {kind: manual}\n"
        f"source: {{kind: video, path: {work / 'doorway.mp4'}, realtime: false, loop: true}}\n"
        "burst: {frames: 10, duration: 0.05, cooldown: 0}\n"
        f"vision: {{threads: 2, search_every: {args.search_every}}}\n"
        f"facehash: {{key_file: {work / 'unit.key'}}}\nmqtt: {{port: {port}, health_every: 1}}\n"
        f"outbox: {{path: {work / 'outbox.sqlite'}}}\n"
    )
    mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    broker = subprocess.Popen([mosquitto, "-c", str(work / "mosquitto.conf")], stderr=subprocess.DEVNULL)
    unit = subprocess.Popen(
        [sys.executable, "-m", "edge.cli", "run", "--config", str(config), "--print-events"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        bufsize=1,
    )
    try:
        time.sleep(4)  # models loaded, broker connected
        latencies, persons = [], []
        for _ in range(args.bursts + 1):
            t = time.perf_counter()
            unit.send_signal(signal.SIGUSR1)
            ready, _, _ = select.select([unit.stdout], [], [], 30)
            if not ready:
                raise SystemExit("no event within 30 s")
            line = unit.stdout.readline()
            latencies.append(time.perf_counter() - t)
            persons.append(line.count('"facehash"'))
        queue_at_door = door_queue(unit, work)
        status = Path(f"/proc/{unit.pid}/status").read_text()
        peak = int(next(x for x in status.splitlines() if x.startswith("VmHWM")).split()[1]) / 1024
    finally:
        unit.send_signal(signal.SIGTERM)
        unit.wait(30)
        broker.terminate()
        shutil.rmtree(work, ignore_errors=True)
    ms = [1000 * x for x in latencies[1:]]  # the first burst warms caches up
    base = baseline_ms(frames, 10)
    print(
        f"traceon-edge burst benchmark: {args.bursts} bursts of 10 frames, 1280×720, one face, {os.cpu_count()} cores,"
        f" searched whole every {args.search_every}"
    )
    print(
        f"  trigger → PUBACK   median {statistics.median(ms):7.1f} ms   p95 {np.percentile(ms, 95):7.1f} ms"
        f"   max {max(ms):7.1f} ms   (persons per event: {sorted(set(persons))})"
    )
    print(
        f"  baseline in-process: detect+embed+group+hash of the same 10 frames {base:7.1f} ms"
        f"   (daemon / baseline = {statistics.median(ms) / base:.2f})"
    )
    print(f"  {queue_at_door}")
    print(f"  peak RSS of the daemon (VmHWM)                                {peak:7.1f} MB")


if __name__ == "__main__":
    main()
