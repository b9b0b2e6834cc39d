"""Accuracy of the shipped int8 embedder against dlib's own float network, on LFW-format pairs.

    python tools/evaluate.py [--pairs ../shared/data/lfw_dev/pairsDevTrain.txt] [--out docs/ACCURACY.md]
    python tools/evaluate.py --detectors [--docs docs]      # writes DETECTION.md

Every photo goes through the same detection and alignment (the device's own), then through
(a) dlib's float `compute_face_descriptor`, (b) the float NumPy rebuild of the network, and (c) the
shipped int8 model. Prints a table and writes it to docs/ACCURACY.md. Needs face-recognition-models
(dlib's float network): `pip install -e '.[test]'`. A quick run (`--pairs-each N`: the first N same- and N
different-person pairs; `--impostors`, `--faces`) must write elsewhere than docs/ (`--out`, `--docs`).
"""

from __future__ import annotations

import argparse
import datetime
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import lfw
from dlib_resnet import load_network, reference_forward
from evaluate_facehash import facehash_section

from edge.core import shipped

FACES = lfw.ROOT.parent / "shared" / "data" / "faces"


def dlib_descriptors(chips: np.ndarray) -> np.ndarray:
    import dlib

    recogniser = dlib.face_recognition_model_v1(str(dlib_dat()))
    return np.array([recogniser.compute_face_descriptor(c) for c in chips], np.float32)


def dlib_dat() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None:
        sys.exit("dlib's float network is needed: pip install -e '.[test]' (face-recognition-models)")
    return Path(spec.submodule_search_locations[0]) / "models" / "dlib_face_recognition_resnet_model_v1.dat"


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def verification(emb: np.ndarray, index: dict, pairs: list[lfw.Pair]) -> dict:
    sim = np.array([float(emb[index[p.a]] @ emb[index[p.b]]) for p in pairs])
    result = lfw.scores(sim, np.array([p.same for p in pairs]))
    return {**result, "decisions": sim >= result["threshold"]}


def faces_decisions(recogniser_path: Path, count: int | None = None) -> list[str]:
    """Every pair of photos in ../shared/data/faces (`count`: of its first photos): dlib float at its 0.6 rule vs
    int8 at its threshold."""
    import itertools

    import dlib

    from edge.unit.vision import FacePipeline
    from edge.unit.vision.media import read_image

    pipeline = FacePipeline()
    recogniser = dlib.face_recognition_model_v1(str(recogniser_path))
    photos = sorted(p for p in FACES.rglob("*") if p.is_file())[:count]
    faces = {p: pipeline.process(read_image(p))[0] for p in photos}
    raw = {p: np.array(recogniser.compute_face_descriptor(f.chip)) for p, f in faces.items()}
    counts: dict[tuple[bool, bool, bool], int] = {}
    margins = []
    for a, b in itertools.combinations(photos, 2):
        distance = float(np.linalg.norm(raw[a] - raw[b]))
        similarity = float(faces[a].embedding @ faces[b].embedding)
        key = (a.parent == b.parent, distance < 0.6, similarity >= pipeline.threshold)
        counts[key] = counts.get(key, 0) + 1
        margins.append((abs(similarity - pipeline.threshold), a, b, distance, similarity))
    name = lambda p: f"{p.parent.name}/{p.name}"  # noqa: E731
    lines = [
        f"## Every pair of photos in `faces/` ({len(photos)} photos, {len(margins)} pairs)",
        "",
        f"dlib float: same person if the Euclidean distance of its raw descriptors is < 0.6 (dlib's rule); "
        f"int8: same person if cosine ≥ {pipeline.threshold} (the shipped threshold).",
        "",
        "| truth | dlib float says | int8 says | pairs |",
        "|---|---|---|---|",
    ]
    word = {True: "same", False: "different"}
    for key in sorted(counts, reverse=True):
        lines.append(f"| {word[key[0]]} | {word[key[1]]} | {word[key[2]]} | {counts[key]} |")
    lines += [
        "",
        "The five pairs closest to the int8 threshold:",
        "",
        "| pair | dlib distance | int8 cosine |",
    ]
    lines.append("|---|---|---|")
    for _, a, b, d, c in sorted(margins, key=lambda m: m[0])[:5]:
        lines.append(f"| {name(a)} – {name(b)} | {d:.3f} | {c:.4f} |")
    return [*lines, ""]


class GrayCopy:
    """HOG as the unit ran it before YuNet came: on a grayscale copy of the frame."""

    def __init__(self, hog):
        self.hog = hog

    def detect(self, frame: np.ndarray, order: str) -> list:
        from edge.unit.vision.frame import to_gray

        return self.hog.detect(to_gray(frame, order), order)


def detector_table(pairs_path: Path, each: int | None = None) -> list[str]:
    """Each detector as the unit runs it (working width 640, upsample 0): misses count as errors."""
    from edge.unit.vision.detect import make_detector
    from edge.unit.vision.pipeline import VisionSettings

    files, defaults = shipped.load_models(), VisionSettings()
    rows = [
        "| detector | photos without a face | 10-fold accuracy, misses counted | on scored pairs | TAR at FAR 1e-3 "
        "| ms per photo |",
        "|---|---|---|---|---|---|",
    ]
    for kind in ("hog on the gray copy (before)", "hog", "yunet", "hog+yunet"):
        if kind.startswith("hog on the gray"):
            detector = GrayCopy(make_detector("hog", files.detector, defaults.working_width, 0))
        else:
            detector = make_detector(kind, files.detector, defaults.working_width, 0, defaults.min_score)
        started = time.perf_counter()
        data = lfw.embedded(pairs_path, detector, each)
        took = (time.perf_counter() - started) / data.photos * 1000
        counted, _ = data.with_misses()
        sim = np.array([float(data.vectors[data.index[p.a]] @ data.vectors[data.index[p.b]]) for p in data.pairs])
        r = lfw.scores(sim, data.same)
        label = f"`{kind}` (default)" if kind == defaults.detector else f"`{kind}`" if "gray" not in kind else kind
        rows.append(
            f"| {label} | {data.photos - len(data.paths)} of {data.photos} | {100 * counted:.2f}% "
            f"| {100 * r['acc']:.2f}% ({len(data.pairs)} pairs) | {100 * r['tar']:.1f}% | {took:.1f} |"
        )
        print(rows[-1], flush=True)
    return [
        "# Face detectors on lfw_dev",
        "",
        f"Generated by `python tools/evaluate.py --detectors` on {datetime.date.today().isoformat()} from "
        f"`{pairs_path.name}`. Each photo goes through the unit's own detector (working width 640, HOG upsample 0, "
        f"YuNet score ≥ {defaults.min_score}), dlib's 5-point landmarks, the 150 px chip and the shipped int8 model; "
        "the face nearest the centre is the named person. A pair with a photo without a face counts as an error "
        "(the trace would never find that person); the scored-pairs column leaves such pairs out. Time per photo "
        "includes decoding, alignment and embedding, on this machine.",
        "",
        *rows,
        "",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=Path, default=lfw.DEFAULT_PAIRS)
    parser.add_argument("--out", type=Path, default=lfw.ROOT / "docs" / "ACCURACY.md")
    parser.add_argument("--detectors", action="store_true", help="compare the detectors; writes docs/DETECTION.md")
    parser.add_argument("--docs", type=Path, default=lfw.DOCS, help="where --detectors writes DETECTION.md")
    parser.add_argument("--pairs-each", type=int, metavar="N", help="only N same- and N different-person pairs")
    parser.add_argument("--impostors", type=int, default=300_000, help="random different-person pairs for FaceHash")
    parser.add_argument("--faces", type=int, metavar="N", help="only the first N photos of faces/")
    args = parser.parse_args()
    quick = args.pairs_each is not None or args.faces is not None or args.impostors != 300_000
    lfw.quick_run_writes_elsewhere(parser, quick, args.docs if args.detectors else args.out.parent)
    if args.detectors:
        lfw.write_doc("DETECTION.md", detector_table(args.pairs, args.pairs_each), args.docs)
        return

    files = shipped.load_models()
    started = time.time()
    data = lfw.embedded(args.pairs, each=args.pairs_each)
    print(f"{len(data.paths)} of {data.photos} photos gave a face; {len(data.pairs)} pairs usable", flush=True)
    stack = data.chips
    net = load_network(dlib_dat())
    reference = np.concatenate([reference_forward(net, stack[i : i + 64]) for i in range(0, len(stack), 64)])
    embeddings = {
        "(a) dlib float": unit(dlib_descriptors(stack)),
        "(b) float rebuild": unit(reference),
        "(c) int8 (shipped)": data.vectors,
    }
    index = data.index
    results = {name: verification(e, index, data.pairs) for name, e in embeddings.items()}
    a, c = embeddings["(a) dlib float"], embeddings["(c) int8 (shipped)"]
    cos = np.sum(a * c, axis=1)
    flips = int(np.sum(results["(a) dlib float"]["decisions"] != results["(c) int8 (shipped)"]["decisions"]))

    rows = [
        "| embedding | 10-fold accuracy | TAR at FAR 1e-3 | best threshold (cosine) |",
        "|---|---|---|---|",
    ]
    for name, r in results.items():
        acc, tar = f"{100 * r['acc']:.2f}% ± {100 * r['std']:.2f}", f"{100 * r['tar']:.1f}%"
        rows.append(f"| {name} | {acc} | {tar} | {r['threshold']:.4f} |")
    rebuilt = np.sum(a * embeddings["(b) float rebuild"], axis=1)
    missed = data.photos - len(data.paths)
    threshold = files.manifest["match"]["threshold"]
    usable = len(data.pairs)
    pairs_total = len(lfw.read_pairs(args.pairs, args.pairs_each))
    text = "\n".join(
        [
            "# Accuracy of the face embedder",
            "",
            f"Generated by `python tools/evaluate.py` on {datetime.date.today().isoformat()} "
            f"from `{args.pairs.name}` ({pairs_total} pairs, {data.photos} photos).",
            "",
            f"Faces missed: {missed} of {data.photos} photos (HOG, upsample {lfw.LFW_UPSAMPLE}); "
            f"{pairs_total - usable} pairs dropped, {usable} scored. All three embeddings use "
            "the same detection, landmarks and aligned chips. Counting each dropped pair as an error, the int8 "
            f"model's 10-fold accuracy is {100 * data.with_misses()[0]:.2f}% (the table scores found pairs only; "
            "the unit's own detectors are compared in DETECTION.md).",
            "",
            *rows,
            "",
            "| cosine per photo | median | 1st percentile | worst |",
            "|---|---|---|---|",
            f"| dlib float vs int8 | {np.median(cos):.5f} | {np.percentile(cos, 1):.5f} | {cos.min():.5f} |",
            f"| dlib float vs float rebuild | {np.median(rebuilt):.7f} | {np.percentile(rebuilt, 1):.7f} "
            f"| {rebuilt.min():.7f} |",
            "",
            f"Decisions that differ between dlib float and int8, each at its own best threshold: "
            f"{flips} of {usable}. The shipped threshold is {threshold} "
            f"(models/{files.manifest['name']}.json).",
            "",
            "TAR at FAR 1e-3 rests on the one most similar impostor pair of about 1,100: read it as coarse.",
            "",
            *facehash_section(data, unit(reference), args.impostors),
            *faces_decisions(dlib_dat(), args.faces),
        ]
    )
    print(text)
    args.out.parent.mkdir(exist_ok=True)
    args.out.write_text(text)
    print(f"wrote {args.out} in {time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
