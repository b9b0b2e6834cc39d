"""Calibrate `trace` for a 1:N search: the FaceHash distance at each false-accept rate, on all lfw_dev pairs.

    python tools/calibrate_trace.py       # fh2: models/facehash_operating_fh2.json, docs/TRACING_CALIBRATION.md
    python tools/calibrate_trace.py --scheme fh1   # fh1: writes models/facehash_operating.json (every code length)
    python tools/calibrate_trace.py --people 8 --scheme both --models DIR --docs DIR   # a quick run, elsewhere

A trace compares one query with every stored row, so what matters is the false-accept rate (FAR) per
row: expected false sightings = FAR × rows searched. For each code length and for queries made from
1 to 4 photos (one FaceHash of their mean embedding), this measures on every photo of lfw_dev, under
several keys pooled, the share of different-person comparisons (FAR) and of same-person comparisons
(TAR) within each distance: Hamming bits for fh1, the rounded Euclidean distance of the codes (code units,
`fh2.distances`) for fh2. Where fewer than 100 different-person pairs fall within a distance
the FAR is extrapolated from a probit fit of the measured tail (1e-5 … 1e-3), which lies above the
measured points there: a cautious estimate, flagged as extrapolated. `--people N` is a quick run on the N
people with the most photos: it must write to other folders (`--models`, `--docs`) than the shipped ones.
A run calibrates one scheme (or `both`) and writes the document from both schemes' files in `--models`: the
scheme not run keeps its file (fh1's was calibrated before fh2 existed; rerunning it would move its curves
only because the cached lfw_dev embeddings now hold a few more photos).
"""

from __future__ import annotations

import argparse
import datetime
import functools
import hashlib
import itertools
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import lfw

from edge.core import facehash, fh2, schemes, shipped
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
SCHEMES = ("fh1", "fh2")
FILES = {"fh1": operating_point.FILE, "fh2": "facehash_operating_fh2.json"}
FH2_SIZE = int(np.ceil(2 * fh2.LIMIT * np.sqrt(fh2.BITS // 8))) + 1  # distances 0 … the largest two codes can have


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


class Measure:
    """One scheme's codes and distances, made by the unit's own hasher (facehash.hasher, fh2.distances)."""

    def __init__(self, name: str, key: facehash.Key, bits: int):
        self.name, self.bits = name, bits
        self.hasher = schemes.hasher(key, facehash.load_scheme(), name, bits if name == "fh1" else None)
        self.size = bits + 1 if name == "fh1" else FH2_SIZE

    def codes(self, vectors: np.ndarray) -> np.ndarray:
        """fh1: packed uint64 words; fh2: the int8 codes."""
        codes = self.hasher.codes(vectors)
        return packed(codes) if self.name == "fh1" else codes

    def distances(self, queries: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Queries × rows distances."""
        if self.name == "fh1":
            return hamming(queries, rows)
        return np.stack([fh2.distances(rows, [q.tobytes()]) for q in queries])

    def nearest(self, queries: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Each row's distance to the nearest query."""
        if self.name == "fh1":
            return hamming(queries, rows).min(0)
        return fh2.distances(rows, [q.tobytes() for q in queries])


def histograms(
    data: lfw.People, bits: int, photos: int, union: int = 1, scheme: str = "fh1"
) -> tuple[np.ndarray, np.ndarray]:
    """Counts of genuine and impostor comparisons at each distance, pooled over KEYS keys.

    union > 1: the query is that many FaceHashes (one photo each) and a row's distance is the smallest."""
    genuine = impostor = None
    for k in range(KEYS):
        measure = Measure(scheme, fixed_key(k), bits)
        if genuine is None:
            genuine, impostor = np.zeros(measure.size, np.int64), np.zeros(measure.size, np.int64)
        rows = measure.codes(data.vectors)
        if union > 1:
            for group in data.groups(at_least=union + 1):
                others = np.flatnonzero(data.labels != data.labels[group[0]])
                for chosen in itertools.islice(itertools.combinations(group, union), QUERIES_PER_PERSON):
                    rest = np.array([g for g in group if g not in chosen])
                    d = measure.nearest(rows[list(chosen)], rows)
                    genuine += np.bincount(d[rest], minlength=measure.size)
                    impostor += np.bincount(d[others], minlength=measure.size)
            continue
        batch: list = []
        for item in comparisons(data, photos):
            batch.append(item)
            if len(batch) == 64:
                _add(measure, rows, batch, genuine, impostor)
                batch = []
        _add(measure, rows, batch, genuine, impostor)
    return genuine, impostor


def _add(measure: Measure, rows, batch, genuine, impostor) -> None:
    if not batch:
        return
    queries = measure.codes(np.stack([q for q, _, _ in batch]))
    d = measure.distances(queries, rows)
    for row, (_, same, other) in zip(d, batch, strict=True):
        genuine += np.bincount(row[same], minlength=measure.size)
        impostor += np.bincount(row[other], minlength=measure.size)


def curve(genuine: np.ndarray, impostor: np.ndarray) -> dict:
    """FAR and TAR at each distance up to where FAR passes the largest operating FAR, with the fitted tail."""
    within = np.cumsum(impostor)
    far = within / within[-1]
    tar = np.cumsum(genuine) / genuine.sum()
    probit = NormalDist().inv_cdf
    fit_at = [d for d in range(len(far)) if FIT_RANGE[0] <= far[d] <= FIT_RANGE[1]]
    if len(set(far[fit_at])) < 2:  # too few pairs to reach the range (a quick run): fit what was measured
        fit_at = [d for d in range(len(far)) if 0 < far[d] < 1]
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


# --- burst-mean rows: what a deployed store holds ----------------------------------------------------------

BURST = 3  # photos a burst (evaluate_best_k's lfw_dev bursts of 3)


@dataclass
class Bursts:
    """lfw_dev through the unit's pipeline: each person's disjoint bursts of BURST photos (rows: the burst's
    quality-weighted mean, as the unit hashes a person) and the photos a query may be made of."""

    rows: np.ndarray  # burst means, L2-normalised
    row_person: np.ndarray
    first: dict[int, int]  # person → their first burst's row (the one a query of their other photos must find)
    faces: list[list[np.ndarray]]  # each person's photo embeddings; faces[p][:BURST] make their first burst


def bursts(most: int | None = None) -> Bursts:
    from evaluate_best_k import burst_person, lfw_people

    from edge.unit.vision import FacePipeline, VisionSettings

    pipeline = FacePipeline(VisionSettings(threads=2, workers=2))
    found = lfw_people(pipeline, 1, most)
    pipeline.close()
    rows, owners, first, faces = [], [], {}, []
    for person, (_, views) in enumerate(found.values()):
        faces.append([f.embedding for f in views])
        for start in range(0, len(views) - BURST + 1, BURST):
            mean = burst_person(views[start : start + BURST]).embedding
            if mean is None:  # no view the unit trusts: the unit would not hash this burst
                continue
            if start == 0:
                first[person] = len(rows)
            rows.append(mean)
            owners.append(person)
    return Bursts(np.array(rows), np.array(owners), first, faces)


def burst_queries(data: Bursts, photos: int):
    """(query vector, its genuine row or -1, person): the mean of `photos` photos of a person, none of them in
    the burst it must find; people with no first burst still make impostor queries."""
    for person, faces in enumerate(data.faces):
        pool = faces[BURST:] if person in data.first else faces
        genuine = data.first.get(person, -1)
        for chosen in itertools.islice(itertools.combinations(range(len(pool)), photos), QUERIES_PER_PERSON):
            yield unit(np.sum([pool[i] for i in chosen], axis=0)), genuine, person


def burst_histograms(data: Bursts, photos: int, scheme: str) -> tuple[np.ndarray, np.ndarray]:
    genuine = impostor = None
    queries = list(burst_queries(data, photos))
    for k in range(KEYS):
        measure = Measure(scheme, fixed_key(k), 1024)
        if genuine is None:
            genuine, impostor = np.zeros(measure.size, np.int64), np.zeros(measure.size, np.int64)
        rows = measure.codes(data.rows)
        for first in range(0, len(queries), 64):
            batch = queries[first : first + 64]
            d = measure.distances(measure.codes(np.stack([q for q, _, _ in batch])), rows)
            for row, (_, mate, person) in zip(d, batch, strict=True):
                if mate >= 0:
                    genuine[row[mate]] += 1
                impostor += np.bincount(row[data.row_person != person], minlength=measure.size)
    return genuine, impostor


def burst_rows(data: Bursts, results: dict, burst_curves: dict) -> list[str]:
    """The burst-row curves beside the shipped (photo-row) ones: what the shipped distance gives on burst rows."""
    lines = [
        "| scheme, query | "
        + " | ".join(f"FAR {f:g}: burst curve" for f in FARS)
        + " | "
        + " | ".join(f"FAR {f:g}: shipped d → burst-row FAR / TAR" for f in FARS)
        + " |",
        "|---|" + "---|" * (2 * len(FARS)),
    ]
    for name, per_m in burst_curves.items():
        for photos, c in per_m.items():
            shipped_curve = operating_point.Curve.from_json(results[name]["lengths"]["1024"][photos])
            own = [f"{d} / {100 * t:.1f}" for d, t in (at_far(c, far) for far in FARS)]
            cross = []
            for far in FARS:
                d = min(shipped_curve.distance_at(far), len(c["far"]) - 1)
                cross.append(f"{d} → {c['far'][d]:.1e} / {100 * c['tar'][d]:.1f}")
            lines.append(f"| {name}, {photos} photo(s) | {' | '.join(own)} | {' | '.join(cross)} |")
    return lines


def calibrate(data: lfw.People, scheme_name: str, model_id: str) -> dict:
    """The operating file of one scheme: fh1 at every code length, fh2 at its one length (1,024 bits)."""
    scheme = facehash.load_scheme()
    calibrated_on = (
        f"lfw_dev, every pair of its {len(data.vectors)} photos with a face found "
        f"({data.photos} photos, {len(data.groups())} people), {KEYS} keys pooled"
    )
    extrapolated = (
        f"below measured_from (fewer than {MEASURED_FLOOR} different-person pairs), far[] is a "
        f"probit fit of the measured FAR between {FIT_RANGE[0]} and {FIT_RANGE[1]}"
    )
    if scheme_name == "fh1":
        lengths = sorted(int(b) for b in scheme["thresholds"])
        result: dict = {
            "scheme": f"{scheme['version']} {scheme['levels']} levels, span {scheme['span']}",
            "model": model_id,
            "calibrated_on": calibrated_on,
            "rule": "a row is a sighting if its Hamming distance to the query is <= the distance whose FAR fits "
            "the budget; far[d] and tar[d] are the shares of different- and same-person comparisons within d bits",
            "extrapolated": extrapolated,
            "lengths": {},
        }
    else:
        lengths = [fh2.BITS]
        result = {
            "scheme": f"fh2 int8 keyed rotation of the centred embedding, scale {scheme['fh2']['scale']}",
            "model": model_id,
            "calibrated_on": calibrated_on,
            "rule": "a row is a sighting if the rounded Euclidean distance of its fh2 code to the query's (code "
            "units, fh2.distances) is <= the distance whose FAR fits the budget; far[d] and tar[d] are the shares "
            "of different- and same-person comparisons within distance d",
            "extrapolated": extrapolated,
            "lengths": {},
        }
    for bits in lengths:
        result["lengths"][str(bits)] = {
            str(photos): curve(*histograms(data, bits, photos, scheme=scheme_name))
            for photos in range(1, MAX_PHOTOS + 1)
        }
        print(scheme_name, bits, "bits done", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--people", type=int, metavar="N", help="only the N people of lfw_dev with the most photos")
    parser.add_argument("--scheme", choices=[*SCHEMES, "both"], default="fh2", help="the scheme(s) to calibrate")
    parser.add_argument("--models", type=Path, default=shipped.models_dir(), help="where the operating files go")
    parser.add_argument("--docs", type=Path, default=lfw.DOCS, help="where TRACING_CALIBRATION.md goes")
    args = parser.parse_args()
    lfw.quick_run_writes_elsewhere(parser, args.people is not None, args.models, args.docs)
    files = shipped.load_models()
    data = lfw.people(most=args.people)
    print(f"{len(data.vectors)} of {data.photos} photos with a face, {len(data.groups())} people", flush=True)
    args.models.mkdir(parents=True, exist_ok=True)
    for name in SCHEMES if args.scheme == "both" else (args.scheme,):
        result = calibrate(data, name, files.model_id)
        (args.models / FILES[name]).write_text(json.dumps(result, indent=1) + "\n")
    results = {
        n: json.loads((args.models / FILES[n]).read_text()) for n in SCHEMES if (args.models / FILES[n]).exists()
    }
    unions = {n: curve(*histograms(data, 1024, 1, union=2, scheme=n)) for n in results}
    burst_data = bursts(args.people)
    print(f"{len(burst_data.rows)} burst rows of {BURST} photos, {len(burst_data.first)} people", flush=True)
    burst_curves = {
        n: {str(m): curve(*burst_histograms(burst_data, m, n)) for m in range(1, MAX_PHOTOS + 1)} for n in results
    }
    extra = [
        "",
        "## Burst-mean rows (what a deployed store holds)",
        "",
        f"A unit stores one FaceHash a person a burst: the quality-weighted mean of the burst's trusted views. "
        f"Here a burst is {BURST} lfw_dev photos of one person through the unit's own pipeline and trust rules "
        f"(tools/evaluate_best_k.py's lfw_dev bursts; every disjoint burst of every person: {len(burst_data.rows)} "
        f"rows, {len(burst_data.first)} people), and a query of m other photos of the person must find their first "
        "burst; every query meets every other person's bursts. Left: the burst-row curve's distance / TAR at "
        "each FAR. Right: the distance the shipped (photo-row) curve picks for that FAR → the FAR and TAR it "
        "gives on burst rows.",
        "",
        *burst_rows(burst_data, results, burst_curves),
        "",
        "Comparisons: "
        + "; ".join(
            f"{n}, m={m}: {c['pairs']['same']:,} same / {c['pairs']['different']:,} different"
            for n, per_m in burst_curves.items()
            for m, c in per_m.items()
        )
        + ".",
        "",
        "What it means: a burst mean, like a query's mean, sits nearer everyone than a photo does, so on burst rows "
        "the shipped distance accepts 2 to 5 times the FAR it was chosen for (right half), and finds far more of "
        "the person (higher TAR). The shipped curves stay the photo-row ones: these bursts are a worst case of a "
        "unit's burst (three photos of a person taken on different days average away more than the views of one "
        "walk-by), and their curves are measured only down to about 100 / (different pairs) — 4e-5 for one photo, "
        "1.5e-4 for two, 1e-3 and worse for three and four — so at the trace's FARs (1e-5 and below) they would be "
        "extrapolations of a few thousand photos. Read a trace's expected false sightings on a deployed store as up "
        "to five times the report's until the units' own bursts are calibrated.",
        "",
    ]
    write_doc(data, results, unions, cosine_row(data), args.docs, extra)


def write_doc(
    data: lfw.People, results: dict, unions: dict, cosine: str, folder: Path = lfw.DOCS, extra: tuple = ()
) -> None:
    head = "| | " + " | ".join(f"FAR {f:g}" for f in FARS) + " |"
    rule = "|---|" + "---|" * len(FARS)

    def cells(c: dict) -> str:
        parts = []
        for far in FARS:
            d, tar = at_far(c, far)
            parts.append(f"{d} / {100 * tar:.1f}")
        return " | ".join(parts)

    def label(name: str, bits: str) -> str:
        return f"`fh1` {bits} bits (Hamming)" if name == "fh1" else "`fh2` (Euclidean, code units)"

    lines = [
        "# Calibration of `trace` for a 1:N search",
        "",
        f"Generated by `python tools/calibrate_trace.py --scheme SCHEME` on {datetime.date.today().isoformat()}; "
        f"model `{next(iter(results.values()))['model'] if results else ''}`. Shipped in "
        + " and ".join(f"`models/{FILES[n]}` ({n}: {r['calibrated_on']})" for n, r in results.items())
        + ".",
        "",
        "A trace compares the query with every stored row, so a threshold is judged by its false-accept rate "
        "(FAR) per row: expected false sightings = FAR × rows searched. Cells: the distance at that FAR / "
        "true-accept rate (TAR, %) there. For `fh1` the distance is in bits (Hamming); for `fh2` it is the "
        "rounded Euclidean distance of the codes in code units (about 32 a standard deviation of a coordinate).",
        "",
        "## One photo each side",
        "",
        head,
        rule,
        cosine,
    ]
    for name, result in results.items():
        for bits, per in result["lengths"].items():
            lines.append(f"| {label(name, bits)} | {cells(per['1'])} |")
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
    for photos in map(str, range(1, MAX_PHOTOS + 1)):
        for name, result in results.items():
            lines.append(f"| {name}, mean of {photos} photo(s) | {cells(result['lengths']['1024'][photos])} |")
    for name, result in results.items():
        single = operating_point.Curve.from_json(result["lengths"]["1024"]["1"])
        union = unions[name]
        union_cells = []
        for far in FARS:
            d = single.distance_at(far / 2)
            union_cells.append(f"{d} / {100 * union['tar'][d]:.1f} (FAR {union['far'][d]:.1e})")
        lines.append(
            f"| {name}, 2 FaceHashes (one photo each), nearer counts, FAR/2 each | {' | '.join(union_cells)} |"
        )
    lines += [
        "",
        "The last rows: `trace CODE1 CODE2` accepts a row within the distance of either code; it spends half "
        "the FAR budget on each (union bound), so their cells show the one-photo distance at FAR/2, the measured "
        "TAR of the nearer code there and the measured FAR of the pair (which the bound keeps under the column's), "
        f"measured on the {len(data.vectors)} photos of this run. Comparisons per row:",
        "",
    ]
    for name, result in results.items():
        lines.append(
            f"- {name}: "
            + ", ".join(
                f"m={p}: {c['pairs']['same']:,} same / {c['pairs']['different']:,} different"
                for p, c in result["lengths"]["1024"].items()
            )
            + "."
        )
    lines += ["", *extra]
    lfw.write_doc("TRACING_CALIBRATION.md", lines, folder)


if __name__ == "__main__":
    main()
