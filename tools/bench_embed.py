"""Benchmark of the face pipeline, one thread each (a benchmark, not a test: it prints numbers).

    python tools/bench_embed.py [--repeat 30] [--throughput] [--bursts N] [--frames 10] [--photos N]

Per face: dlib's float `compute_face_descriptor`, the shipped int8 model, and the float32 TFLite build
of the same network when tools/build_model.py has left it in build/ (ratios against dlib in the same run).
Each detector (hog, yunet, hog+yunet, and HOG on the gray copy it used before) on 640×480 and 1280×720
frames at the default working width, one whole 1280×720 frame with one face through each, and the peak
RSS of `traceon-edge embed` over the sample photos (`--photos`: the first N), and the sustained frames per second
at 640×480 on 1 and 2 cores, against face_recognition's steps (`--throughput`: only that; `--bursts` of `--frames`
frames, by default a tenth of `--repeat` and at least 2).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import cv2
import numpy as np

cv2.setNumThreads(1)  # YuNet runs on OpenCV's DNN module: one thread, like everything else here

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from edge.unit.vision import FacePipeline, VisionSettings  # noqa: E402
from edge.unit.vision.embedder import Embedder  # noqa: E402
from edge.unit.vision.frame import to_gray  # noqa: E402
from edge.unit.vision.media import read_image  # noqa: E402

FACES = ROOT.parent / "shared" / "data" / "faces"
DETECTORS = ("hog", "yunet", "hog+yunet")
FLOAT32 = ROOT / "build" / "dlib_resnet_v1_float32.tflite"


def ms_per_call(fn, repeat: int) -> float:
    return interleaved({"": fn}, repeat)[""]


def interleaved(fns: dict, repeat: int) -> dict[str, float]:
    """Median ms per call of each function, taken in turns so that the machine's ups and downs
    (other load, clock changes) fall on all of them alike."""
    for fn in fns.values():
        fn()  # warm-up: first calls allocate
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    return {name: 1000 * statistics.median(ts) for name, ts in times.items()}


def frame_with_face(width: int, height: int, step: int = 0) -> np.ndarray:
    """A real photo scaled so the face spans 30% of the frame height, as a doorway camera sees it; `step`
    frames of someone walking across, 5% of the frame width (a fifth of the face) a frame."""
    photo = read_image(FACES / "barack_obama" / "1.jpg")  # face box about 256 px wide
    scale = 0.3 * height / 256
    photo = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)[:height, :width]
    scene = np.full((height, 2 * width, 3), 110, np.uint8)  # the frame is a window on it that the person crosses
    y, x = (height - photo.shape[0]) // 2, width - photo.shape[1] // 2
    scene[y : y + photo.shape[0], x : x + photo.shape[1]] = photo
    left = width // 2 - round((step - 5) * 0.05 * width)
    return np.ascontiguousarray(scene[:, left : left + width])


def sample_photos(count: int | None = None) -> list[Path]:
    return sorted(p for p in FACES.rglob("*") if p.is_file())[:count]


def peak_rss_of_embed(photos: int | None = None) -> float:
    command = [sys.executable, "-m", "edge.cli", "embed", *map(str, sample_photos(photos))]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    if status != 0:
        raise SystemExit(f"embed failed with status {status}")
    return usage.ru_maxrss / 1024


_worker: FacePipeline | None = None


def _load_pipeline() -> None:
    global _worker
    _worker = FacePipeline(VisionSettings(threads=1))


def _find_in_worker(frame: np.ndarray) -> list:
    return _worker.find_faces(frame)


def _peak_mb(_: int) -> float:
    status = Path("/proc/self/status").read_text()
    return int(next(x for x in status.splitlines() if x.startswith("VmHWM")).split()[1]) / 1024


def process_pool_ms(frames: list[np.ndarray], bursts: int) -> tuple[float, float]:
    """ms per frame with the frames of each burst found by 2 worker processes that load the models once (faces
    and chips pickled back), embedded and grouped here; and the peak RSS of the largest worker."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from edge.unit.persons import group

    pipeline = FacePipeline(VisionSettings(threads=2))
    context = multiprocessing.get_context("spawn")  # a worker as it would run: its own interpreter and models
    with ProcessPoolExecutor(2, context, initializer=_load_pipeline) as pool:
        list(pool.map(_find_in_worker, frames))  # warm-up: both workers have loaded the models
        started = time.perf_counter()
        for _ in range(bursts):
            faces = list(pool.map(_find_in_worker, frames))
            pipeline.embed([f for frame in faces for f in frame])
            group(faces, pipeline.threshold)
        ms = (time.perf_counter() - started) / (bursts * len(frames)) * 1000
        peak = max(pool.map(_peak_mb, range(8)))
    return ms, peak


def throughput(recogniser, repeat: int, bursts: int | None = None, per_burst: int = 10) -> list[tuple[str, float, str]]:
    """Sustained frames per second at 640×480, one face a frame (someone walking across), through a burst's
    steps (find on the workers, one embed call per burst of `per_burst` frames, group), searching every frame whole and
    every third, against face_recognition's own steps done with dlib on the same frames (HOG at upsample 1 on
    RGB, 5-point landmarks, float descriptor), in this run. Reported as ms per frame."""
    import dlib

    from edge.unit.persons import group

    bursts = bursts or max(2, repeat // 10)
    frames = [frame_with_face(640, 480, step) for step in range(per_burst)]
    rows, per_frame = [], {}
    for every in (1, 3):
        for workers in (1, 2):
            pipeline = FacePipeline(VisionSettings(threads=workers, workers=workers, search_every=every))
            pipeline.embed([f for frame in pipeline.find_faces_in(frames) for f in frame])  # warm-up: models load
            started = time.perf_counter()
            for _ in range(bursts):
                faces = pipeline.find_faces_in(frames)
                assert [len(f) for f in faces] == [1] * len(frames), "a frame's face was not found"
                pipeline.embed([f for frame in faces for f in frame])
                group(faces, pipeline.threshold)
            per_frame[every, workers] = ms = (time.perf_counter() - started) / (bursts * len(frames)) * 1000
            pipeline.close()
            whole = "every frame searched whole" if every == 1 else f"searched whole every {every}"
            rows.append(
                (f"sustained 640×480, one face a frame, {whole}, {workers} core(s)", ms, f"{1000 / ms:.0f} fps")
            )
    ms, worker_mb = process_pool_ms(frames, bursts)
    rows.append(
        (
            f"  same, every frame whole, 2 worker processes (each peaks at {worker_mb:.0f} MB)",
            ms,
            f"{1000 / ms:.0f} fps, {per_frame[1, 2] / ms:.2f}× the 2 threads",
        )
    )
    detector, shapes = dlib.get_frontal_face_detector(), dlib.shape_predictor(str(pipeline.files.landmarks))
    started = time.perf_counter()
    for frame in frames * bursts:
        rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        for box in detector(rgb, 1):
            recogniser.compute_face_descriptor(rgb, shapes(rgb, box))
    dlib_ms = (time.perf_counter() - started) / (bursts * len(frames)) * 1000
    rows.append(("face_recognition's steps with dlib float, 1 core", dlib_ms, f"{1000 / dlib_ms:.0f} fps"))
    for every in (1, 3):
        ms = per_frame[every, 2]
        rows.append((f"  ratio: 2 cores, whole every {every}, against dlib float's steps", ms, f"{dlib_ms / ms:.1f}×"))
    return rows


def show(rows: list[tuple[str, float, str]]) -> None:
    for name, ms, ratio in rows:
        print(f"  {name:<72} {ms:8.2f} ms  {ratio}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--throughput", action="store_true", help="only the sustained frames per second (20 s)")
    parser.add_argument("--bursts", type=int, help="bursts for the sustained frames per second")
    parser.add_argument("--frames", type=int, default=10, help="frames of each of those bursts (1 to 10)")
    parser.add_argument("--photos", type=int, help="only the first N sample photos for the peak RSS of embed")
    args = parser.parse_args()
    if not 1 <= args.frames <= 10:
        parser.error("--frames: a burst here is 1 to 10 frames of someone crossing the frame")
    import dlib
    from evaluate import dlib_dat

    pipeline = FacePipeline(VisionSettings(threads=1))
    chips = [f.chip for p in sorted(FACES.rglob("*.jpg"))[:8] for f in pipeline.find_faces(read_image(p))]
    chip = chips[0]
    rows = []

    recogniser = dlib.face_recognition_model_v1(str(dlib_dat()))
    if args.throughput:
        show(throughput(recogniser, args.repeat, args.bursts, args.frames))
        return
    int8, batch = pipeline.embedder, np.stack(chips)
    fns = {
        "dlib float compute_face_descriptor": lambda: recogniser.compute_face_descriptor(chip),
        "int8 TFLite, LiteRT (XNNPACK), batch 1": lambda: int8.embed(chip[None]),
        f"int8 TFLite, batch of {len(batch)} (per face)": lambda: int8.embed(batch),
    }
    if FLOAT32.exists():
        manifest = {
            "input": {"scale": 1.0, "zero_point": 0, "dtype": "float32"},
            "output": {"scale": 1.0, "zero_point": 0},
            "embedding_size": 128,
        }
        f32 = Embedder(FLOAT32, manifest, threads=1)
        fns["float32 TFLite, LiteRT (XNNPACK), batch 1"] = lambda: f32.embed(chip[None])
    times = interleaved(fns, args.repeat)
    dlib_ms = times["dlib float compute_face_descriptor"]
    for name, ms in times.items():
        per_face = ms / len(batch) if "batch of" in name else ms
        rows.append((name, per_face, f"{dlib_ms / per_face:.1f}×"))
    if not FLOAT32.exists():
        rows.append(("float32 TFLite (run tools/build_model.py to build it)", float("nan"), "-"))

    pipelines = {kind: FacePipeline(VisionSettings(threads=1, detector=kind)) for kind in DETECTORS}
    for w, h in ((640, 480), (1280, 720)):
        frame = frame_with_face(w, h)
        gray = to_gray(frame, "bgr")
        fns = {"hog on the gray copy (before issue 12)": lambda g=gray: pipelines["hog"].detector.detect(g, "bgr")}
        for kind, p in pipelines.items():
            assert len(p.detector.detect(frame, "bgr")) == 1, kind
            fns[kind] = lambda f=frame, d=p.detector: d.detect(f, "bgr")
        times = interleaved(fns, args.repeat)
        for name, ms in times.items():
            rows.append((f"detect, {w}×{h} frame: {name}", ms, f"{ms / times['hog']:.2f}× hog"))
    frame = frame_with_face(1280, 720)
    times = interleaved({kind: lambda p=p: p.process(frame) for kind, p in pipelines.items()}, args.repeat)
    for kind, ms in times.items():
        rows.append(
            (f"whole 1280×720 frame, one face, detect + align + embed: {kind}", ms, f"{ms / times['hog']:.2f}× hog")
        )

    rows += throughput(recogniser, args.repeat, args.bursts, args.frames)

    print(f"traceon-edge pipeline benchmark, one thread, {os.cpu_count()} cores, median of {args.repeat} runs")
    show(rows)
    photos = f"{len(sample_photos(args.photos))} sample photos"
    print(f"  {'peak RSS of `traceon-edge embed` over ' + photos:<72} {peak_rss_of_embed(args.photos):8.1f} MB")


if __name__ == "__main__":
    main()
