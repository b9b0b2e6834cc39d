"""FaceHash stability when a person's embedding comes from only the best K views instead of every view.

    python tools/evaluate_best_k.py [--search-every 3] [--clip-frames FIRST:END] [--people N]

Two kinds of burst, through the unit's default pipeline (hog+yunet, a whole search every 3rd frame, or as
`--search-every` says):
- the hamilton clip at 10 fps, bursts of 10 frames starting on each of its 3 frame phases: every FaceHash of
  a person the unit hashes (Lin-Manuel Miranda: the rest of the clip's faces are blurred, small or in
  profile) against every other, and against the FaceHash of his sample photo;
- bursts built from lfw_dev photos (a burst = B photos of one person, taken as one person's views): two
  disjoint bursts of each person with at least 2B photos (mated), and first bursts of two people (non-mated).
"Best K" keeps the K views of highest weight (the weight the unit already averages by). It also prints what
embedding only K chips a person would save against embedding every face of a 10-frame burst. A quick run:
`--clip-frames 90:150`, only those frames of the clip; `--people N`, only the N lfw_dev people with the most photos.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

import lfw  # noqa: E402
from lfw import nearest_centre  # noqa: E402

from edge.core import facehash  # noqa: E402
from edge.core.facehash import FaceHasher, Key  # noqa: E402
from edge.unit.config import VisionConfig  # noqa: E402
from edge.unit.persons import Person, TrustRules, group  # noqa: E402
from edge.unit.vision import FacePipeline, VisionSettings  # noqa: E402
from edge.unit.vision.media import read_image, video_frames  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
VIEWS = (1, 2, 3, 5, None)  # None: every view, as the unit does


def label(k: int | None) -> str:
    return "every view" if k is None else f"best {k}"


def clip_rows(pipeline: FacePipeline, hasher: FaceHasher, frames: slice = slice(None)) -> list[str]:
    clip = [frame for _, frame in video_frames(DATA / "video" / "short_hamilton_clip.mp4")][frames]
    persons, bursts = [], 0
    for phase in range(3):
        frames = clip[phase::3]
        for start in range(0, len(frames), 10):
            faces = pipeline.find_faces_in(frames[start : start + 10])
            bursts += 1
            pipeline.embed([f for frame in faces for f in frame])
            persons += [p for p in group(faces, pipeline.threshold) if p.hashable]
    photo = pipeline.process(read_image(DATA / "faces" / "lin_manuel_miranda" / "1.png"))[0]
    reference = hasher.hash(photo.embedding)
    views = [len([s for s in p.sightings if s[2]]) for p in persons]
    rows = [
        f"Clip: {len(persons)} persons hashed in {bursts} bursts, trusted views per person: median "
        f"{statistics.median(views):.0f}, from {min(views)} to {max(views)}. Threshold {hasher.threshold}.",
        "",
        "| views averaged | burst against burst: median | max | pairs within threshold | against his photo: "
        "median | max | within threshold |",
        "|---|---|---|---|---|---|---|",
    ]
    for k in VIEWS:
        hashes = [hasher.hash(p.embedding_of_best(k)) for p in persons]
        pairs = [facehash.distance(a, b) for a, b in itertools.combinations(hashes, 2)]
        photo = [facehash.distance(h, reference) for h in hashes]
        rows.append(
            f"| {label(k)} | {statistics.median(pairs):.3f} | {max(pairs):.3f} | {within(pairs, hasher)} | "
            f"{statistics.median(photo):.3f} | {max(photo):.3f} | {within(photo, hasher)} |"
        )
    return rows


def within(distances: list[float], hasher: FaceHasher) -> str:
    inside = sum(d <= hasher.threshold for d in distances)
    return f"{inside} of {len(distances)} ({100 * inside / len(distances):.1f}%)"


def decidability(mated: list[float], others: list[float]) -> float:
    """d′: how far apart the two distance distributions lie, in their pooled standard deviation."""
    spread = np.sqrt((np.var(mated) + np.var(others)) / 2)
    return float(abs(np.mean(others) - np.mean(mated)) / spread)


def lfw_people(pipeline: FacePipeline, least: int, most: int | None = None) -> dict[str, tuple[int, list]]:
    """The face nearest the centre of each photo, for people with at least `least` photos in lfw_dev (`most`: of
    the `most` people with the most photos only); by name, with how many photos each has."""
    people = {}
    for name, photos in itertools.groupby(lfw.photos(most), key=lambda p: p.parent.name):
        paths = list(photos)
        if len(paths) < least:
            continue
        faces = []
        for path in paths:
            frame = read_image(path)
            found = pipeline.process(frame)
            if found:
                faces.append(nearest_centre(found, frame))
        people[name] = (len(paths), faces)
    return people


def burst_person(faces: list) -> Person:
    """lfw_dev photos of one person taken as the views of one burst, trusted as the unit trusts a view (its
    continuity rule aside: these are separate photos)."""
    rules = TrustRules(continuity=False)
    return Person([(i, f, rules.trusts(f)) for i, f in enumerate(faces)])


def lfw_rows(hasher: FaceHasher, burst: int, found: dict[str, tuple[int, list]]) -> list[str]:
    """`found`: lfw_people's, for people with at least 2 × `burst` photos or fewer."""
    people = {name: faces for name, (photos, faces) in found.items() if photos >= 2 * burst}
    bursts = {
        name: (burst_person(faces[:burst]), burst_person(faces[burst : 2 * burst])) for name, faces in people.items()
    }
    bursts = {name: pair for name, pair in bursts.items() if pair[0].hashable and pair[1].hashable}
    rows = [
        f"lfw_dev, bursts of {burst} photos: {len(bursts)} people with two hashable bursts "
        f"({len(bursts)} mated pairs, {len(bursts) * (len(bursts) - 1) // 2} non-mated).",
        "",
        "| views averaged | mated: median distance | mated within threshold | non-mated within threshold "
        "| mated closer than the nearest 1% of non-mated | d′ |",
        "|---|---|---|---|---|---|",
    ]
    for k in [k for k in VIEWS if k is None or k < burst]:
        codes = {n: [hasher.hash(p.embedding_of_best(k)) for p in pair] for n, pair in bursts.items()}
        mated = [facehash.distance(a, b) for a, b in codes.values()]
        others = [facehash.distance(codes[a][0], codes[b][0]) for a, b in itertools.combinations(codes, 2)]
        separated = sum(d < np.percentile(others, 1) for d in mated)  # TAR at FAR 1%, whatever the threshold
        rows.append(
            f"| {label(k)} | {statistics.median(mated):.3f} | {within(mated, hasher)} | {within(others, hasher)} "
            f"| {separated} of {len(mated)} | {decidability(mated, others):.2f} |"
        )
    return rows


def embedding_cost(pipeline: FacePipeline) -> list[str]:
    chips = [f.chip for p in sorted((DATA / "faces").rglob("*.jpg"))[:10] for f in pipeline.find_faces(read_image(p))]
    times = {}
    for count in (10, 3):
        batch = chips[:count]
        pipeline.embedder.embed(np.stack(batch))
        started = time.perf_counter()
        for _ in range(20):
            pipeline.embedder.embed(np.stack(batch))
        times[count] = (time.perf_counter() - started) / 20 * 1000
    return [
        f"Embedding a 10-frame burst's 10 chips: {times[10]:.1f} ms; only the best 3: {times[3]:.1f} ms "
        f"(saves {times[10] - times[3]:.1f} ms a burst).",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--search-every", type=int, default=VisionConfig.model_fields["search_every"].default)
    parser.add_argument(
        "--clip-frames",
        type=lambda text: slice(*(int(n) if n else None for n in text.split(":"))),
        default=slice(None),
        metavar="FIRST:END",
        help="only these frames of the clip (he is hashed from frame 60 or so)",
    )
    parser.add_argument("--people", type=int, metavar="N", help="only the N lfw_dev people with the most photos")
    args = parser.parse_args()
    pipeline = FacePipeline(VisionSettings(threads=2, workers=2, search_every=args.search_every))
    hasher = FaceHasher(Key(b"\x5a" * 32), facehash.load_scheme())
    found = lfw_people(pipeline, 2 * 2, args.people)  # each photo once, for the bursts of 3 and of 2
    lines = [*clip_rows(pipeline, hasher, args.clip_frames), "", *lfw_rows(hasher, 3, found), ""]
    lines += [*lfw_rows(hasher, 2, found), "", *embedding_cost(pipeline)]
    pipeline.close()
    print("\n".join(lines))


if __name__ == "__main__":
    main()
