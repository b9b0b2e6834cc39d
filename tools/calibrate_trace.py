"""Calibrate `trace` for a 1:N search: the FaceHash distance at each false-accept rate, on all lfw_dev pairs.

    python tools/calibrate_trace.py          # writes models/facehash_operating.json and docs/TRACING_CALIBRATION.md
    python tools/calibrate_trace.py --people 8 --models DIR --docs DIR   # a quick run, written elsewhere

A trace compares one query with every stored row, so what matters is the false-accept rate (FAR) per
row: expected false sightings = FAR × rows searched. For each code length and for queries made from
1 to 4 photos (one FaceHash of their mean embedding), this measures on every photo of lfw_dev, under
several keys pooled, the share of different-person comparisons (FAR) and of same-person comparisons
(TAR) within each Hamming distance. Where fewer than 100 different-person pairs fall within a distance
the FAR is extrapolated from a probit fit of the measured tail (1e-5 … 1e-3), which lies above the
measured points there: a cautious estimate, flagged as extrapolated. `--people N` is a quick run on the N
people with the most photos: it must write to other folders (`--models`, `--docs`) than the shipped ones.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import hashlib
import itertools
import json
import sys
from pathlib import Path
from statistics import NormalDist

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import lfw

from edge.core import facehash, shipped
from edge.tracer import operating_point

# Every length and query size under one key uses the same keyed rotations: make each once, not once per hasher
# (they were most of a quick run's time). The function is the unit's own, only remembered.
facehash.rotation = functools.cache(facehash.rotation)

KEYS = 3
MAX_PHOTOS = operating_point.MAX_QUERY_PHOTOS
QUERIES_PER_PERSON = 20  # m-photo combinations per person (caps the people with many photos)
FIT_RANGE = (1e-5, 1e-3)
MEASURED_FLOOR = 100  # different-person pairs within a distance below which the fit takes over
FARS = (1e-3, 1e-4, 1e-5, 1e-6)


def fixed_key(i: int) -> facehash.Key:
    return facehash.Key(hashlib.sha256(f"traceon-edge trace calibration {i}".encode()).digest())


def packed(codes: np.ndarray) -> np.ndarray:
    """Bool codes (N × bits) as rows of uint64 words for XOR and popcount."""
    return np.packbits(codes, axis=1).view(np.uint64)


def hamming(queries: np.ndarray, rows: np.ndarray) -> np.ndarray:
    return np.bitwise_count(queries[:, None, :] ^ rows[None, :, :]).sum(2, dtype=np.int32)


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def comparisons(data: lfw.People, photos: int):
    """(query vectors, genuine row indices, impostor row mask) for queries made from `photos` photos."""
    if photos == 1:  # every pair once: query i against the rows after it
        for i in range(len(data.vectors)):
            later = np.arange(i + 1, len(data.vectors))
            same = data.labels[later] == data.labels[i]
            yield data.vectors[i], later[same], later[~same]
        return
    for group in data.groups(at_least=photos + 1):
        others = np.flatnonzero(data.labels != data.labels[group[0]])
        for chosen in itertools.islice(itertools.combinations(group, photos), QUERIES_PER_PERSON):
            rest = np.array([g for g in group if g not in chosen])
            yield unit(data.vectors[list(chosen)].sum(0)), rest, others


def histograms(data: lfw.People, bits: int, photos: int, union: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Counts of genuine and impostor comparisons at each distance, pooled over KEYS keys.

    union > 1: the query is that many FaceHashes (one photo each) and a row's distance is the smallest."""
    scheme = facehash.load_scheme()
    genuine, impostor = np.zeros(bits + 1, np.int64), np.zeros(bits + 1, np.int64)
    for k in range(KEYS):
        hasher = facehash.FaceHasher(fixed_key(k), scheme, bits)
        rows = packed(hasher.codes(data.vectors))
        if union > 1:
            for group in data.groups(at_least=union + 1):
                others = np.flatnonzero(data.labels != data.labels[group[0]])
                for chosen in itertools.islice(itertools.combinations(group, union), QUERIES_PER_PERSON):
                    rest = np.array([g for g in group if g not in chosen])
                    d = hamming(rows[list(chosen)], rows).min(0)
                    genuine += np.bincount(d[rest], minlength=bits + 1)
                    impostor += np.bincount(d[others], minlength=bits + 1)
            continue
        batch: list = []
        for item in comparisons(data, photos):
            batch.append(item)
            if len(batch) == 64:
                _add(hasher, rows, batch, genuine, impostor, bits)
                batch = []
        _add(hasher, rows, batch, genuine, impostor, bits)
    return genuine, impostor


def _add(hasher, rows, batch, genuine, impostor, bits) -> None:
    if not batch:
        return
    queries = packed(hasher.codes(np.stack([q for q, _, _ in batch])))
    d = hamming(queries, rows)
    for row, (_, same, other) in zip(d, batch, strict=True):
        genuine += np.bincount(row[same], minlength=bits + 1)
        impostor += np.bincount(row[other], minlength=bits + 1)


def curve(genuine: np.ndarray, impostor: np.ndarray) -> dict:
    """FAR and TAR at each distance up to where FAR passes the largest operating FAR, with the fitted tail."""
    within = np.cumsum(impostor)
    far = within / within[-1]
    tar = np.cumsum(genuine) / genuine.sum()
    probit = NormalDist().inv_cdf
    fit_at = [d for d in range(len(far)) if FIT_RANGE[0] <= far[d] <= FIT_RANGE[1]]
    slope, intercept = np.polyfit(fit_at, [probit(far[d]) for d in fit_at], 1)
    measured_from = int(np.argmax(within >= MEASURED_FLOOR))
    last = int(np.argmax(far >= operating_point.MAX_FAR))
    # far[] and tar[] both end at `last`, even where too few pairs leave every distance up to it to the fit
    fitted = [NormalDist().cdf(slope * d + intercept) for d in range(min(measured_from, last + 1))]
    values = fitted + list(far[measured_from : last + 1])
    return {
        "far": [float(f"{v:.3g}") for v in values],
        "tar": [round(float(t), 4) for t in tar[: last + 1]],
        "measured_from": measured_from,
        "pairs": {"same": int(genuine.sum()), "different": int(impostor.sum())},
    }


def at_far(c: dict, far: float) -> tuple[int, float]:
    d = operating_point.Curve.from_json(c).distance_at(far)
    return d, c["tar"][d]


def cosine_row(data: lfw.People) -> str:
    sim = data.vectors @ data.vectors.T
    upper = np.triu_indices(len(sim), 1)
    same = (data.labels[:, None] == data.labels[None, :])[upper]
    s = sim[upper]
    impostor = np.sort(s[~same])[::-1]
    cells = []
    for far in FARS:
        t = impostor[int(far * len(impostor))]
        cells.append(f"{t:.4f} / {100 * np.mean(s[same] > t):.1f}")
    return "| int8 embedding, cosine (threshold / TAR %) | " + " | ".join(cells) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--people", type=int, metavar="N", help="only the N people of lfw_dev with the most photos")
    parser.add_argument("--models", type=Path, default=shipped.models_dir(), help=f"where {operating_point.FILE} goes")
    parser.add_argument("--docs", type=Path, default=lfw.DOCS, help="where TRACING_CALIBRATION.md goes")
    args = parser.parse_args()
    lfw.quick_run_writes_elsewhere(parser, args.people is not None, args.models, args.docs)
    files = shipped.load_models()
    data = lfw.people(most=args.people)
    scheme = facehash.load_scheme()
    lengths = sorted(int(b) for b in scheme["thresholds"])
    print(f"{len(data.vectors)} of {data.photos} photos with a face, {len(data.groups())} people", flush=True)
    result: dict = {
        "scheme": f"{scheme['version']} {scheme['levels']} levels, span {scheme['span']}",
        "model": files.model_id,
        "calibrated_on": f"lfw_dev, every pair of its {len(data.vectors)} photos with a face found "
        f"({data.photos} photos, {len(data.groups())} people), {KEYS} keys pooled",
        "rule": "a row is a sighting if its Hamming distance to the query is <= the distance whose FAR fits the "
        "budget; far[d] and tar[d] are the shares of different- and same-person comparisons within d bits",
        "extrapolated": f"below measured_from (fewer than {MEASURED_FLOOR} different-person pairs), far[] is a "
        f"probit fit of the measured FAR between {FIT_RANGE[0]} and {FIT_RANGE[1]}",
        "lengths": {},
    }
    for bits in lengths:
        result["lengths"][str(bits)] = {}
        for photos in range(1, MAX_PHOTOS + 1):
            result["lengths"][str(bits)][str(photos)] = curve(*histograms(data, bits, photos))
        print(bits, "bits done", flush=True)
    args.models.mkdir(parents=True, exist_ok=True)
    (args.models / operating_point.FILE).write_text(json.dumps(result, indent=1) + "\n")
    union = curve(*histograms(data, 1024, 1, union=2))
    write_doc(data, result, union, cosine_row(data), args.docs)


def write_doc(data: lfw.People, result: dict, union: dict, cosine: str, folder: Path = lfw.DOCS) -> None:
    head = "| | " + " | ".join(f"FAR {f:g}" for f in FARS) + " |"
    rule = "|---|" + "---|" * len(FARS)
    lengths = result["lengths"]

    def cells(c: dict) -> str:
        parts = []
        for far in FARS:
            d, tar = at_far(c, far)
            parts.append(f"{d} / {100 * tar:.1f}")
        return " | ".join(parts)

    lines = [
        "# Calibration of `trace` for a 1:N search",
        "",
        f"Generated by `python tools/calibrate_trace.py` on {datetime.date.today().isoformat()}: "
        f"{result['calibrated_on']}; model `{result['model']}`. Shipped in `models/{operating_point.FILE}`.",
        "",
        "A trace compares the query with every stored row, so a threshold is judged by its false-accept rate "
        "(FAR) per row: expected false sightings = FAR × rows searched. Cells: Hamming distance (bits) at that "
        "FAR / true-accept rate (TAR, %) there.",
        "",
        "## One photo each side, every code length",
        "",
        head,
        rule,
        cosine,
    ]
    for bits, per in lengths.items():
        lines.append(f"| FaceHash {bits} bits | {cells(per['1'])} |")
    lines += [
        "",
        "## Stronger queries (1,024 bits)",
        "",
        "A query made from m photos of the person is one FaceHash of their quality-weighted mean embedding "
        "(`traceon-edge embed --key-file K --one-person PHOTO…`), compared with single photos of the person "
        "(TAR) and of everyone else (FAR). A mean embedding sits nearer everyone, so its FAR at a given "
        "distance is higher: each m has its own curve, and `trace --query-photos m` uses it.",
        "",
        head,
        rule,
    ]
    for photos, c in lengths["1024"].items():
        lines.append(f"| mean of {photos} photo(s) | {cells(c)} |")
    single = operating_point.Curve.from_json(lengths["1024"]["1"])
    union_cells = []
    for far in FARS:
        d = single.distance_at(far / 2)
        union_cells.append(f"{d} / {100 * union['tar'][d]:.1f} (FAR {union['far'][d]:.1e})")
    lines += [
        f"| 2 FaceHashes (one photo each), nearer counts, FAR/2 each | {' | '.join(union_cells)} |",
        "",
        "The last row: `trace CODE1 CODE2` accepts a row within the distance of either code; it spends half "
        "the FAR budget on each (union bound), so its cells show the one-photo distance at FAR/2, the measured TAR "
        "of the nearer code there and the measured FAR of the pair (which the bound keeps under the column's). "
        "Comparisons per row: "
        + ", ".join(
            f"m={p}: {c['pairs']['same']:,} same / {c['pairs']['different']:,} different"
            for p, c in lengths["1024"].items()
        )
        + ".",
        "",
    ]
    lfw.write_doc("TRACING_CALIBRATION.md", lines, folder)


if __name__ == "__main__":
    main()
