"""LFW-format pairs and aligned chips, through the same detection and alignment the device uses.

Shared by build_model.py (calibration chips, match threshold) and evaluate.py and evaluate_facehash.py (accuracy).
"""

from __future__ import annotations

import collections
import os
import sys
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge.unit.vision.align import Aligner  # noqa: E402
from edge.unit.vision.detect import Detector, HogDetector  # noqa: E402
from edge.unit.vision.frame import to_rgb  # noqa: E402
from edge.unit.vision.media import read_image  # noqa: E402

LFW_DEV = ROOT.parent / "shared" / "data" / "lfw_dev"
DEFAULT_PAIRS = LFW_DEV / "pairsDevTrain.txt"
DOCS = ROOT / "docs"
# LFW photos are 250 px with the face about 110 px across: one upsampling step finds the few smaller ones.
LFW_UPSAMPLE = 1


@dataclass(frozen=True)
class Pair:
    a: Path
    b: Path
    same: bool


def read_pairs(path: Path = DEFAULT_PAIRS, each: int | None = None) -> list[Pair]:
    """The pairs of an LFW-format file; with `each`, only its first `each` same-person and first `each`
    different-person pairs (a quick run: the figures are not the full set's)."""
    images = path.parent / "images"

    def image(name: str, index: str) -> Path:
        return images / name / f"{name}_{int(index):04d}.jpg"

    pairs = []
    for line in path.read_text().splitlines()[1:]:
        f = line.split()
        if len(f) == 3:
            pairs.append(Pair(image(f[0], f[1]), image(f[0], f[2]), True))
        elif len(f) == 4:
            pairs.append(Pair(image(f[0], f[1]), image(f[2], f[3]), False))
    if each is not None:
        pairs = [p for p in pairs if p.same][:each] + [p for p in pairs if not p.same][:each]
    return pairs


def nearest_centre(found: list, frame: np.ndarray):
    """Of detections or faces (anything with a `box`), the one nearest the photo's centre: LFW centres the named
    person."""
    h, w = frame.shape[:2]
    return min(found, key=lambda d: (d.box[0] + d.box[2] - w) ** 2 + (d.box[1] + d.box[3] - h) ** 2)


def central_chip(path: Path, detector: Detector, aligner: Aligner) -> np.ndarray | None:
    """The aligned chip of the face nearest the photo's centre."""
    frame = read_image(path)
    detections = detector.detect(frame, "bgr")
    if not detections:
        return None
    best = nearest_centre(detections, frame)
    rgb = to_rgb(frame, "bgr")
    return aligner.chip(rgb, aligner.landmarks(rgb, best.box))


def chips_for(
    paths: list[Path], landmarks: Path, upsample: int = LFW_UPSAMPLE, detector: Detector | None = None
) -> dict[Path, np.ndarray | None]:
    """Chips as the model was built (HOG, upsample 1) unless another detector is given."""
    detector, aligner = detector or HogDetector(640, upsample), Aligner(landmarks)
    return {p: central_chip(p, detector, aligner) for p in paths}


def unique_images(pairs: list[Pair]) -> list[Path]:
    return sorted({p.a for p in pairs} | {p.b for p in pairs})


def ten_fold_accuracy(
    similarity: np.ndarray, same: np.ndarray, scored: np.ndarray | None = None
) -> tuple[float, float]:
    """LFW protocol: the threshold is chosen on nine folds and scored on the tenth; mean and std.

    Pairs not `scored` (a photo without a face) count as errors: the trace never finds that person.
    """
    scored = np.ones(len(same), bool) if scored is None else scored
    folds = np.arange(len(same)) % 10
    scores = []
    for k in range(10):
        train, test = (folds != k) & scored, folds == k
        t = best_threshold(similarity[train], same[train])
        scores.append(np.mean(((similarity[test] >= t) == same[test]) & scored[test]))
    return float(np.mean(scores)), float(np.std(scores))


def best_threshold(similarity: np.ndarray, same: np.ndarray) -> float:
    """The threshold between two neighbouring scores that gives the best accuracy (ties: the middle one)."""
    order = np.argsort(similarity, kind="stable")
    s, y = similarity[order], same[order].astype(bool)
    # Cutting before sorted position k calls everything from k on "same person".
    correct = np.concatenate([[0], np.cumsum(~y)]) + np.concatenate([np.cumsum(y[::-1])[::-1], [0]])
    valid = np.concatenate([[True], s[1:] > s[:-1], [True]])
    best = np.flatnonzero(valid & (correct == correct[valid].max()))
    k = best[len(best) // 2]
    if k == 0:
        return float(s[0] - 1e-6)
    if k == len(s):
        return float(s[-1] + 1e-6)
    return float((s[k - 1] + s[k]) / 2)


def tar_at_far(similarity: np.ndarray, same: np.ndarray, far: float = 1e-3) -> tuple[float, float]:
    """True accept rate at the lowest threshold whose false accept rate is at most `far`."""
    impostor = np.sort(similarity[~same])[::-1]
    allowed = int(np.floor(far * len(impostor)))
    threshold = impostor[allowed] + 1e-9 if allowed < len(impostor) else -np.inf
    return float(np.mean(similarity[same] >= threshold)), float(threshold)


def scores(similarity: np.ndarray, same: np.ndarray) -> dict:
    """10-fold accuracy (mean, std), TAR at FAR 1e-3 and the best threshold of one similarity."""
    mean, std = ten_fold_accuracy(similarity, same)
    tar, _ = tar_at_far(similarity, same, 1e-3)
    return {"acc": mean, "std": std, "tar": tar, "threshold": best_threshold(similarity, same)}


@dataclass
class Embedded:
    """Int8 embeddings of the photos of a pairs file whose face was found, and the usable pairs."""

    paths: list[Path]
    vectors: np.ndarray
    chips: np.ndarray
    pairs: list[Pair]  # both photos found
    photos: int  # photos named by the pairs file
    all_pairs: list[Pair]  # every pair of the file, found or not

    def with_misses(self) -> tuple[float, float]:
        """10-fold accuracy over every pair of the file, a pair with a photo without a face counted wrong."""
        index, same = self.index, np.array([p.same for p in self.all_pairs])
        scored = np.array([p.a in index and p.b in index for p in self.all_pairs])
        sim = np.array(
            [
                self.vectors[index[p.a]] @ self.vectors[index[p.b]] if ok else 0.0
                for p, ok in zip(self.all_pairs, scored, strict=True)
            ]
        )
        return ten_fold_accuracy(sim, same, scored)

    @cached_property
    def a(self) -> np.ndarray:
        return np.array([self.index[p.a] for p in self.pairs])

    @cached_property
    def b(self) -> np.ndarray:
        return np.array([self.index[p.b] for p in self.pairs])

    @cached_property
    def same(self) -> np.ndarray:
        return np.array([p.same for p in self.pairs])

    @cached_property
    def index(self) -> dict[Path, int]:
        return {p: i for i, p in enumerate(self.paths)}


def embedded(pairs_path: Path = DEFAULT_PAIRS, detector: Detector | None = None, each: int | None = None) -> Embedded:
    """Chips and int8 embeddings through the device's own detection, alignment and shipped model (`each`:
    read_pairs's)."""
    from edge.core import shipped
    from edge.unit.vision.embedder import Embedder

    files = shipped.load_models()
    pairs = read_pairs(pairs_path, each)
    chips = chips_for(unique_images(pairs), files.landmarks, detector=detector)
    paths = sorted(p for p, c in chips.items() if c is not None)
    stack = np.stack([chips[p] for p in paths])
    embedder = Embedder(files.model, files.manifest, threads=os.cpu_count() or 1)
    vectors = np.concatenate([embedder.embed(stack[i : i + 32]) for i in range(0, len(stack), 32)])
    found = set(paths)
    usable = [p for p in pairs if p.a in found and p.b in found]
    return Embedded(paths, vectors, stack, usable, len(chips), pairs)


def quick_run_writes_elsewhere(parser, quick: bool, *folders: Path) -> None:
    """A quick run (a part of the data) must not overwrite the shipped calibration or the docs: its figures are
    not theirs."""
    from edge.core import shipped

    shipped_places = {DOCS.resolve(), (ROOT / "models").resolve(), shipped.models_dir().resolve()}
    if quick and any(folder.resolve() in shipped_places for folder in folders):
        parser.error("a quick run must not overwrite shipped files or docs: point its output options elsewhere")


def write_doc(name: str, lines: list[str], folder: Path = DOCS) -> None:
    """Write a generated document (docs/NAME unless another folder is given) and print it."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text("\n".join(lines))
    print("\n".join(lines))


def section(name: str, marker: str, folder: Path = DOCS) -> list[str]:
    """The generated section `marker` of docs/NAME (its fence lines included), or nothing."""
    path = folder / name
    lines = path.read_text().split("\n") if path.exists() else []
    begin, end = f"<!-- begin {marker} -->", f"<!-- end {marker} -->"
    if begin not in lines or end not in lines:
        return []
    return lines[lines.index(begin) : lines.index(end) + 1]


def write_section(name: str, marker: str, body: list[str], folder: Path = DOCS) -> None:
    """Replace (or append) the generated section `marker` of docs/NAME, keeping the rest: two tools write one
    document (calibrate_facehash.py its head, compare_schemes.py the candidates of issue 21)."""
    path = folder / name
    lines = path.read_text().split("\n") if path.exists() else []
    old = section(name, marker, folder)
    block = [f"<!-- begin {marker} -->", *body, f"<!-- end {marker} -->"]
    if old:
        start = lines.index(old[0])
        lines[start : start + len(old)] = block
    else:
        lines += ["", *block, ""]
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))
    print("\n".join(body))


@dataclass
class People:
    """Int8 embeddings of every lfw_dev photo whose face was found, labelled by person (all pairs, not a list)."""

    paths: list[Path]
    vectors: np.ndarray  # N × 128, L2-normalised
    labels: np.ndarray  # N person numbers
    photos: int  # photos in the folder, found or not

    def groups(self, at_least: int = 1) -> list[np.ndarray]:
        """Photo indices of each person with at least `at_least` photos whose face was found."""
        order = np.argsort(self.labels, kind="stable")
        groups = np.split(order, np.flatnonzero(np.diff(self.labels[order])) + 1)
        return [g for g in groups if len(g) >= at_least]


def photos(most: int | None = None) -> list[Path]:
    """Every photo under lfw_dev/images, in name order; with `most`, only those of the `most` people with the most
    photos (a quick run that still has people with several photos)."""
    paths = sorted((LFW_DEV / "images").glob("*/*.jpg"))
    if most is None:
        return paths
    count = collections.Counter(p.parent.name for p in paths)
    chosen = set(sorted(count, key=lambda name: (-count[name], name))[:most])
    return [p for p in paths if p.parent.name in chosen]


def people(cache: Path | None = None, most: int | None = None) -> People:
    """Every photo under lfw_dev/images through the device's detection, alignment and model, cached in build/;
    with `most`, only the photos of `photos(most)`, and not cached."""
    from edge.core import shipped
    from edge.unit.vision.embedder import Embedder

    files = shipped.load_models()
    if most is None:
        cache = cache or ROOT / "build" / f"lfw_dev_people_{files.model_id.replace('@', '_')}_up{LFW_UPSAMPLE}.npz"
    paths = photos(most)
    if cache is None or not cache.exists():
        chips = chips_for(paths, files.landmarks)
        found = [p for p in paths if chips[p] is not None]
        stack = np.stack([chips[p] for p in found])
        embedder = Embedder(files.model, files.manifest, threads=os.cpu_count() or 1)
        vectors = np.concatenate([embedder.embed(stack[i : i + 32]) for i in range(0, len(stack), 32)])
        if cache is None:
            return _people(found, vectors, len(paths))
        cache.parent.mkdir(exist_ok=True)
        np.savez(cache, vectors=vectors, paths=np.array([str(p.relative_to(LFW_DEV)) for p in found]))
    data = np.load(cache)
    return _people([LFW_DEV / p for p in data["paths"]], data["vectors"], len(paths))


def _people(found: list[Path], vectors: np.ndarray, photos: int) -> People:
    _, labels = np.unique([p.parent.name for p in found], return_inverse=True)
    return People(found, vectors.astype(np.float64), labels, photos)
