"""Benchmark: trigger → PUBACK for a 10-frame burst of 1280×720 frames with one face, and the daemon's peak RSS.

    python tools/bench_burst.py [--bursts 25] [--people 10] [--repeat 10]

Starts mosquitto on a free loopback port and `traceon-edge run` as its own process (a `video` source looping
over a 1280×720 mp4 of a real face walking across and back, a fifth of the face a frame; manual trigger, no
cooldown, 10 consecutive frames a burst; `--search-every` sets `vision.search_every`, default the unit's),
waits until the daemon's health report says it is connected, sends SIGUSR1 and times until the daemon prints
the event, which it does once the broker's PUBACK is in; then a queue of `--people` triggers at the door.
Baseline, in this process: the same 10 frames through detect, embed, group and hash alone (median of `--repeat`).
"""

from __future__ import annotations

import argparse
import json
import os
import select
import shutil
import signal
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
from servers import free_port  # noqa: E402

from edge.core import facehash, health_file  # noqa: E402
from edge.unit import config as unit_config  # noqa: E402
from edge.unit.persons import group  # noqa: E402
from edge.unit.vision import FacePipeline, VisionSettings  # noqa: E402


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


def stopped(unit: subprocess.Popen, log: Path) -> SystemExit:
    return SystemExit(f"the daemon stopped (status {unit.wait(5)}):\n{log.read_text()[-3000:]}")


def wait_connected(unit: subprocess.Popen, health: Path, log: Path, timeout: float = 120) -> None:
    """Until the daemon's health report (kept beside its outbox) says the broker is connected: models loaded."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if unit.poll() is not None:
            raise stopped(unit, log)
        try:
            if health_file.read(health)["broker"] == "connected":
                return
        except (OSError, ValueError):
            pass  # not written yet
        time.sleep(0.1)
    raise SystemExit(f"the daemon did not connect within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def door_queue(unit: subprocess.Popen, health: Path, people: int = 10, apart: float = 0.3) -> str:
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
    report = health_file.read(health)
    return (
        f"{people} triggers {apart * 1000:.0f} ms apart: {published} events published, "
        f"{report['dropped']['bursts_while_busy']} bursts dropped while vision was busy, "
        f"{report['dropped']['triggers_coalesced']} triggers coalesced in all"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bursts", type=int, default=25)
    parser.add_argument("--people", type=int, default=10, help="triggers of the queue at the door")
    parser.add_argument("--repeat", type=int, default=10, help="runs of the in-process baseline")
    parser.add_argument(
        "--search-every", type=int, default=unit_config.VisionConfig.model_fields["search_every"].default
    )
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
    unit_config.load(config)  # the unit's own check: a config it would refuse stops the bench here, saying why
    health = health_file.path_beside(work / "outbox.sqlite")
    log = work / "daemon.log"
    mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    broker = subprocess.Popen([mosquitto, "-c", str(work / "mosquitto.conf")], stderr=subprocess.DEVNULL)
    with open(log, "w") as said:
        unit = subprocess.Popen(
            [sys.executable, "-m", "edge.cli", "run", "--config", str(config), "--print-events"],
            stdout=subprocess.PIPE,
            stderr=said,
            text=True,
            bufsize=1,
        )
    try:
        wait_connected(unit, health, log)
        latencies, persons = [], []
        for _ in range(args.bursts + 1):
            t = time.perf_counter()
            unit.send_signal(signal.SIGUSR1)
            ready, _, _ = select.select([unit.stdout], [], [], 30)
            if not ready:
                raise SystemExit("no event within 30 s")
            line = unit.stdout.readline()
            if not line:
                raise stopped(unit, log)
            latencies.append(time.perf_counter() - t)
            persons.append(len(json.loads(line)["persons"]))
        queue_at_door = door_queue(unit, health, args.people)
        status = Path(f"/proc/{unit.pid}/status").read_text()
        peak = int(next(x for x in status.splitlines() if x.startswith("VmHWM")).split()[1]) / 1024
    finally:
        unit.send_signal(signal.SIGTERM)
        unit.wait(30)
        broker.terminate()
        shutil.rmtree(work, ignore_errors=True)
    ms = [1000 * x for x in latencies[1:]]  # the first burst warms caches up
    base = baseline_ms(frames, args.repeat)
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
