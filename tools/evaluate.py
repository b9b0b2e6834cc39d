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
import itertools
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import lfw
from dlib_resnet import load_network, reference_forward

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


def d_sys(mated: np.ndarray, nonmated: np.ndarray, bins: int = 30) -> float:
    """Gomez-Barrero et al. (IEEE TIFS 2018) system unlinkability D↔sys, from histograms; 0 = unlinkable."""
    edges = np.linspace(min(mated.min(), nonmated.min()), max(mated.max(), nonmated.max()) + 1e-9, bins + 1)
    pm = np.histogram(mated, edges)[0] / len(mated)
    pn = np.histogram(nonmated, edges)[0] / len(nonmated)
    with np.errstate(divide="ignore", invalid="ignore"):
        lr = np.where(pn > 0, pm / pn, np.inf)
        local = np.where(np.isinf(lr), 1.0, np.where(lr > 1, 2 * lr / (1 + lr) - 1, 0.0))
    return float(np.sum(pm * local))


def hamming_similarity(codes_a: np.ndarray, codes_b: np.ndarray) -> np.ndarray:
    return 1.0 - np.mean(codes_a != codes_b, axis=1)


def population_pairs(data: lfw.Embedded, impostors: int = 300_000) -> tuple[np.ndarray, ...]:
    """Every same-person pair of different photos in the set, and many random different-person pairs:
    far more comparisons than the pairs file, so TAR at FAR 1e-3 and D↔sys rest on more than a few pairs."""
    names = np.array([p.parent.name for p in data.paths])
    mated = [(x, y) for n in np.unique(names) for x, y in itertools.combinations(np.flatnonzero(names == n), 2)]
    i, j = np.random.default_rng(0).integers(0, len(names), (2, impostors))
    keep = names[i] != names[j]
    mi, mj = np.array(mated).T
    return mi, mj, i[keep], j[keep]


def tar_population(similarity, pairs: tuple[np.ndarray, ...], far: float = 1e-3) -> float:
    mi, mj, ni, nj = pairs
    threshold = np.quantile(similarity(ni, nj), 1 - far)
    return float(np.mean(similarity(mi, mj) > threshold))


def facehash_section(data: lfw.Embedded, reference: np.ndarray, impostors: int = 300_000) -> list[str]:
    """FaceHash against the embedding and MD5, across keys, and across runtimes (int8 vs float)."""
    import hashlib

    from edge.core.facehash import FaceHasher, Key, load_scheme

    scheme = load_scheme()
    keys = [Key(hashlib.sha256(f"traceon-edge evaluation key {i}".encode()).digest()) for i in range(4)]
    a, b, same = data.a, data.b, data.same
    population = population_pairs(data, impostors)
    v = data.vectors
    cosine = lfw.scores(np.sum(v[a] * v[b], axis=1), same)
    cos_tar = tar_population(lambda i, j: np.sum(v[i] * v[j], axis=1), population)
    rows = [
        f"| int8 embedding, cosine | {100 * cosine['acc']:.2f}% | {100 * cosine['tar']:.1f}% "
        f"| {100 * cos_tar:.1f}% | — |"
    ]
    for bits in (128, 256, 512, 1024):
        results, tars = [], []
        for key in keys[:3]:
            codes = FaceHasher(key, scheme, bits).codes(v)
            results.append(lfw.scores(hamming_similarity(codes[a], codes[b]), same))
            tars.append(tar_population(lambda i, j, c=codes: hamming_similarity(c[i], c[j]), population))
        acc, tar = [r["acc"] for r in results], [r["tar"] for r in results]
        rows.append(
            f"| FaceHash {bits} bits | {100 * np.mean(acc):.2f}% ({100 * min(acc):.2f}–{100 * max(acc):.2f}) "
            f"| {100 * np.mean(tar):.1f}% ({100 * min(tar):.1f}–{100 * max(tar):.1f}) "
            f"| {100 * np.mean(tars):.1f}% ({100 * min(tars):.1f}–{100 * max(tars):.1f}) "
            f"| {scheme['thresholds'][str(bits)]} |"
        )
    md5 = [hashlib.md5(x.astype(np.float32).tobytes()).hexdigest() for x in v]
    md5_equal = np.array([md5[i] == md5[j] for i, j in zip(a, b, strict=True)])
    rows.append(
        f"| MD5 of the embedding, exact equality | {100 * np.mean(md5_equal == same):.2f}% "
        f"| {100 * md5_equal[same].mean():.1f}% of same-person pairs equal | — | equal |"
    )

    one, two = (FaceHasher(k, scheme) for k in keys[:2])
    codes_one, codes_two = one.codes(v), two.codes(v)
    cross = hamming_similarity(codes_one[a], codes_two[b])
    mi, mj, ni, nj = population
    mated = hamming_similarity(codes_one[mi], codes_two[mj])
    nonmated = hamming_similarity(codes_one[ni], codes_two[nj])
    same_photo = hamming_similarity(codes_one, codes_two)
    floor = d_sys(nonmated[: len(mated)], nonmated[len(mated) :])
    linking = lfw.scores(cross, same)
    within = hamming_similarity(codes_one[a], codes_one[b])

    agreement = 1.0 - np.mean(one.codes(reference) != codes_one, axis=1)
    return [
        "## FaceHash",
        "",
        f"Scheme `{scheme['version']}`: {scheme['levels']}-level dithered thermometer code of keyed random "
        f"rotations of the centred embedding, span ±{scheme['span']}σ (docs/FACEHASH.md: every scheme and length). "
        "Same person if the normalised Hamming distance is at most the threshold. FaceHash cells: mean over 3 keys "
        "(min–max). The last TAR column uses every same-person pair of different photos in lfw_dev "
        f"({len(mi)}) against {len(ni):,} random different-person pairs: the pairs file's 1,100 impostor pairs "
        "leave FAR 1e-3 to a single pair.",
        "",
        "| code | 10-fold accuracy | TAR at FAR 1e-3, pairs file | TAR at FAR 1e-3, all lfw_dev | threshold |",
        "|---|---|---|---|---|",
        *rows,
        "",
        "### Across keys (1,024 bits)",
        "",
        "| | value |",
        "|---|---|",
        f"| same-person pairs, one key: mean distance | {1 - within[same].mean():.3f} |",
        f"| same-person pairs, two keys: mean distance | {1 - mated.mean():.3f} (σ {mated.std():.3f}) |",
        f"| different people, two keys: mean distance | {1 - nonmated.mean():.3f} (σ {nonmated.std():.3f}) |",
        f"| D↔sys, same-person pairs vs different people, two keys | {d_sys(mated, nonmated):.3f} |",
        f"| D↔sys, the same photo vs different people, two keys | {d_sys(same_photo, nonmated):.3f} |",
        f"| D↔sys of two samples of the same distribution (the estimator's floor at this size) | {floor:.3f} |",
        f"| attacker linking the pairs file across two keys, 10-fold accuracy | {100 * linking['acc']:.2f}% |",
        "",
        "D↔sys (Gomez-Barrero et al. 2018) from 30-bin histograms. What little linkage exists comes from a "
        "rotation-invariant quantity, the distance of the embedding from the population mean, which every code "
        "carries (see docs/THREAT_MODEL.md).",
        "",
        "### Across runtimes",
        "",
        f"Bits that agree between the FaceHash of the int8 model and of the float rebuild for the same photo "
        f"({len(agreement)} photos): median {100 * np.median(agreement):.2f}%, 1st percentile "
        f"{100 * np.percentile(agreement, 1):.2f}%, worst {100 * agreement.min():.2f}%.",
        "",
    ]


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
