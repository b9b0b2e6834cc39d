"""Choose and calibrate the FaceHash scheme on lfw_dev; write models/facehash.json and docs/FACEHASH.md.

    python tools/calibrate_facehash.py [--pairs FILE] [--pairs-each N --models DIR --docs DIR]

Learns the public statistics (population mean and per-coordinate scale of the int8 embeddings),
measures every candidate scheme at every code length under several keys, picks the default (the best
TAR at FAR 1e-3 among 1,024-bit schemes whose accuracy is within 0.5 points of the embedding's
cosine), and calibrates a match threshold per length. Keys here are fixed, so the output is
deterministic; they never leave this tool. `--pairs-each N` is a quick run on the first N same-person and N
different-person pairs: it must write to other folders (`--models`, `--docs`) than the shipped ones.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import lfw

from edge.core import facehash, shipped
from edge.core.facehash import FaceHasher, Key

# Every candidate at every length under one key projects with the same keyed rotations: make each once, not once
# per hasher (they are most of this tool's time). The function is the unit's own, only remembered.
facehash.rotation = functools.cache(facehash.rotation)

LENGTHS = (128, 256, 512, 768, 1024)
CANDIDATES = [(2, 0.0)] + [(levels, span) for levels in (3, 5, 9) for span in (1.5, 2.0, 2.5, 3.0)]
EVALUATION_KEYS = 3
CALIBRATION_KEYS = 5


def fixed_key(label: str) -> Key:
    return Key(hashlib.sha256(f"traceon-edge calibration {label}".encode()).digest())


def statistics(vectors: np.ndarray) -> tuple[np.ndarray, float]:
    mean = vectors.mean(axis=0)
    scale = float(np.sqrt(np.mean(np.sum((vectors - mean) ** 2, axis=1)) / vectors.shape[1]))
    return mean, scale


def code_similarity(hasher: FaceHasher, data: lfw.Embedded) -> np.ndarray:
    codes = hasher.codes(data.vectors)
    return 1.0 - np.mean(codes[data.a] != codes[data.b], axis=1)


def srp_gaussian_raw(key: Key, bits: int, data: lfw.Embedded) -> np.ndarray:
    """Baseline: sign of i.i.d. Gaussian projections of the raw (uncentred) embeddings."""
    from edge.core.facehash import _gaussians

    rows = _gaussians(key, "baseline", bits * data.vectors.shape[1]).reshape(bits, -1)
    codes = data.vectors @ rows.T > 0
    return 1.0 - np.mean(codes[data.a] != codes[data.b], axis=1)


def scheme(mean, scale, levels, span, bits=1024, thresholds=None) -> dict:
    return {
        "version": "fh1",
        "levels": levels,
        "span": span,
        "scale": scale,
        "mean": [float(round(m, 7)) for m in mean],
        "default_bits": bits,
        "thresholds": thresholds or {},
    }


def measuring(candidate: dict, bits: int) -> dict:
    """The candidate scheme as FaceHasher takes it at a length whose threshold is not calibrated yet (what is
    measured here): FaceHasher hashes only at the lengths a scheme has thresholds for."""
    return {**candidate, "thresholds": {str(bits): float("nan")}}


COMPARE_SECTION = "compare_schemes"  # tools/compare_schemes.py's generated section of docs/FACEHASH.md


def mean_scores(similarities: list[np.ndarray], same: np.ndarray) -> dict:
    results = [lfw.scores(s, same) for s in similarities]
    return {k: float(np.mean([r[k] for r in results])) for k in ("acc", "tar")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=Path, default=lfw.DEFAULT_PAIRS)
    parser.add_argument("--pairs-each", type=int, metavar="N", help="only N same- and N different-person pairs")
    parser.add_argument("--models", type=Path, default=shipped.models_dir(), help="where facehash.json goes")
    parser.add_argument("--docs", type=Path, default=lfw.DOCS, help="where FACEHASH.md goes")
    args = parser.parse_args()
    lfw.quick_run_writes_elsewhere(parser, args.pairs_each is not None, args.models, args.docs)
    files = shipped.load_models()
    data = lfw.embedded(args.pairs, each=args.pairs_each)
    same = data.same
    mean, scale = statistics(data.vectors)
    cosine = lfw.scores(np.sum(data.vectors[data.a] * data.vectors[data.b], axis=1), same)
    print(f"{len(data.pairs)} pairs; int8 cosine: accuracy {100 * cosine['acc']:.2f}%, TAR {100 * cosine['tar']:.1f}%")

    keys = [fixed_key(f"evaluation {i}") for i in range(EVALUATION_KEYS)]
    table: dict[str, dict[int, dict]] = {"SRP, i.i.d. Gaussian rows, raw embeddings": {}}
    for bits in LENGTHS:
        sims = [srp_gaussian_raw(k, bits, data) for k in keys]
        table["SRP, i.i.d. Gaussian rows, raw embeddings"][bits] = mean_scores(sims, same)
    for levels, span in CANDIDATES:
        name = "SRP, orthogonal, centred" if levels == 2 else f"thermometer, {levels} levels, span ±{span}σ"
        table[name] = {}
        for bits in LENGTHS:
            if bits % (levels - 1):
                continue
            s = scheme(mean, scale, levels, span)
            hashers = [FaceHasher(k, measuring(s, bits), bits) for k in keys]
            table[name][bits] = mean_scores([code_similarity(h, data) for h in hashers], same)
        print(name, {b: f"{100 * r['acc']:.2f}/{100 * r['tar']:.1f}" for b, r in table[name].items()}, flush=True)

    eligible = [
        (r[1024]["tar"], r[1024]["acc"], levels, span)
        for (levels, span), r in zip(CANDIDATES, list(table.values())[1:], strict=True)
        if 1024 in r and r[1024]["acc"] >= cosine["acc"] - 0.005
    ]
    _, _, levels, span = max(eligible) if eligible else (0, 0, 2, 0.0)
    print(f"chosen: {levels} levels, span ±{span}σ, 1024 bits")

    calibration = [fixed_key(f"threshold {i}") for i in range(CALIBRATION_KEYS)]
    thresholds = {}
    for bits in range(8 * (levels - 1), 1025, 8 * (levels - 1)):
        if bits % 128 and bits not in LENGTHS:
            continue
        s = scheme(mean, scale, levels, span)
        pooled = np.concatenate([code_similarity(FaceHasher(k, measuring(s, bits), bits), data) for k in calibration])
        thresholds[str(bits)] = round(1.0 - lfw.best_threshold(pooled, np.tile(same, len(calibration))), 4)
    result = scheme(mean, scale, levels, span, 1024, thresholds)
    result["model"] = files.model_id
    result["calibrated_on"] = f"{args.pairs.name}: {len(data.pairs)} pairs, {len(data.paths)} photos"
    result["threshold_rule"] = "same person if normalised Hamming distance ≤ threshold (best accuracy, 5 keys pooled)"
    previous = args.models / "facehash.json"
    if previous.exists() and "fh2" in (old := json.loads(previous.read_text())):
        result["fh2"] = old["fh2"]  # fh2's scale, threshold and prefilter are fh2's tools' to set, not this one's
    args.models.mkdir(parents=True, exist_ok=True)
    (args.models / "facehash.json").write_text(json.dumps(result, indent=1) + "\n")

    lines = [
        "# FaceHash schemes measured on lfw_dev",
        "",
        f"Generated by `python tools/calibrate_facehash.py` on {datetime.date.today().isoformat()} from "
        f"`{args.pairs.name}` ({len(data.pairs)} pairs with both faces found), int8 embeddings of "
        f"`{files.model_id}`. Each cell: 10-fold accuracy / TAR at FAR 1e-3, mean over {EVALUATION_KEYS} keys.",
        "",
        f"Reference, int8 embedding cosine: **{100 * cosine['acc']:.2f}% / {100 * cosine['tar']:.1f}%**.",
        "",
        "| scheme | " + " | ".join(f"{b} bits" for b in LENGTHS) + " |",
        "|---|" + "---|" * len(LENGTHS),
    ]
    for name, row in table.items():
        cells = [f"{100 * row[b]['acc']:.2f} / {100 * row[b]['tar']:.1f}" if b in row else "—" for b in LENGTHS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Chosen default: **thermometer, {levels} levels, span ±{span}σ, 1,024 bits** (best TAR among 1,024-bit "
        "schemes within 0.5 points of the cosine accuracy).",
        "",
        "Match thresholds (normalised Hamming distance; same person if ≤), calibrated on "
        f"{CALIBRATION_KEYS} other keys pooled:",
        "",
        "| bits | threshold |",
        "|---|---|",
        *[f"| {b} | {t} |" for b, t in thresholds.items()],
        "",
        *lfw.section("FACEHASH.md", COMPARE_SECTION, args.docs),  # compare_schemes.py's part stays
    ]
    lfw.write_doc("FACEHASH.md", lines, args.docs)


if __name__ == "__main__":
    main()
