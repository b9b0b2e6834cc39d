"""Does a trace keep its promise? Sightings of every lfw_dev photo in a store, each person traced from a photo.

    python tools/evaluate_trace.py [--held-out] [--scheme fh1|fh2|both] [--people N --docs DIR]

Every lfw_dev photo whose face is found becomes one sighting (one event, one person row) at a random
checkpoint and time, under a key the calibration never used: the event a unit would send (tools/unit_events.py),
checked as a collector checks it and stored through the real store. Each person
with at least two photos is then traced with the real `trace` (default budget: --max-false 1) from one
of their photos, and with --query-photos 2 from the mean of two when they have three or more. The
report compares the false sightings the header predicted with those returned (rows of other people),
and the share of the person's other photos found with the share the header expected.

Each scheme (default: both, fh2 beside fh1) has its own store and its own calibrated curves.
--held-out calibrates the curves on half of the people and builds the store from the other half, so
that the prediction is tested on people the calibration never saw. `--people N` is a quick run on the N people
with the most photos: it must write its document elsewhere than docs/ (`--docs`).
"""

from __future__ import annotations

import argparse
import datetime
import json
import random
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import calibrate_trace
import lfw
import unit_events

from edge.core import facehash, schemes
from edge.core.topics import Topics
from edge.tracer import intake, operating_point, store, trace

KEY = facehash.Key(b"traceon-edge trace evaluation k.")  # not one of the calibration keys
NOW = datetime.datetime(2026, 11, 23, 12, tzinfo=datetime.UTC)
PREFIX = "traceon"


def sighting(hasher, embedding: np.ndarray, checkpoint: int, at: float) -> intake.Event:
    """One photo seen at a checkpoint: the event a unit sends, checked as a collector checks what it receives."""
    body = unit_events.event(hasher, [embedding], at, checkpoint=f"door-{checkpoint}", site="lfw", frames=1)
    topic = Topics(PREFIX, body["site"], body["checkpoint"], body["device"]).events
    return intake.check(topic, json.dumps(body).encode(), PREFIX)


def subset(data: lfw.People, keep: np.ndarray) -> lfw.People:
    return lfw.People([data.paths[i] for i in keep], data.vectors[keep], data.labels[keep], len(keep))


def held_out_curves(data: lfw.People, scheme: str) -> dict:
    lengths = {}
    for photos in range(1, 3):
        counts = calibrate_trace.histograms(data, 1024, photos, scheme=scheme)
        lengths[str(photos)] = calibrate_trace.curve(*counts)
    return {"lengths": {"1024": lengths}}


def evaluate(data: lfw.People, label: str, scheme: str, far: float | None = None) -> list[str]:
    hasher = schemes.hasher(KEY, facehash.load_scheme(), scheme)
    rng = random.Random(2026)
    start = (NOW - datetime.timedelta(days=10)).timestamp()
    made = [sighting(hasher, v, rng.randrange(20), start + rng.uniform(0, 9 * 86400)) for v in data.vectors]
    codes = [e.body["persons"][0]["facehash"] for e in made]  # each photo's FaceHash, as stored
    with tempfile.TemporaryDirectory() as folder:
        db = store.open_store(str(Path(folder) / "lfw.sqlite"))
        db.add(made)
        row_of = {e.event_id: i for i, e in enumerate(made)}
        lines = []
        for photos in (1, 2):
            predicted = returned = found = wanted = expected_true = traces = 0.0
            for group in data.groups(at_least=photos + 1):
                query = group[:photos]
                if photos == 1:
                    text = codes[query[0]]
                else:
                    mean = data.vectors[query].sum(0)
                    text = str(hasher.hash(mean / np.linalg.norm(mean)))
                result = trace.run(
                    db,
                    [text],
                    datetime.timedelta(minutes=30),
                    datetime.timedelta(days=30),
                    photos=photos,
                    far=far,
                    now=NOW,
                )
                hits = {row_of[s.row.event_id] for s in result.sightings} - set(query.tolist())
                same = set(group.tolist()) - set(query.tolist())
                returned += len(hits - same)
                found += len(hits & same)
                wanted += len(same)
                predicted += result.point.far * (result.point.rows - len(group))  # rows of other people
                expected_true += result.point.tar * len(same)
                traces += 1
            budget = f"--far {far:g}" if far else "--max-false 1"
            lines.append(
                f"| {label} | {scheme} | {photos} | {budget} | {int(traces)} | {len(codes):,} | {predicted:.0f} "
                f"| {returned:.0f} "
                f"| {100 * found / wanted:.1f} % ({found:.0f} of {wanted:.0f}) | {100 * expected_true / wanted:.1f} % |"
            )
            print(lines[-1], flush=True)
        db.close()
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--held-out", action="store_true", help="also calibrate on half the people, test on the rest")
    parser.add_argument("--scheme", choices=("fh1", "fh2", "both"), default="both", help="default: both")
    parser.add_argument("--people", type=int, metavar="N", help="only the N people of lfw_dev with the most photos")
    parser.add_argument("--docs", type=Path, default=lfw.DOCS, help="where TRACE_EVALUATION.md goes")
    args = parser.parse_args()
    lfw.quick_run_writes_elsewhere(parser, args.people is not None, args.docs)
    data = lfw.people(most=args.people)
    head = (
        "| data | scheme | query photos | budget | traces | rows | false predicted | false returned | true found | "
        "true expected |\n|---|---|---|---|---|---|---|---|---|---|"
    )
    print(head)
    names = ("fh1", "fh2") if args.scheme == "both" else (args.scheme,)
    lines = []
    for name in names:
        for far in (None, 1e-4, 1e-5):
            lines += evaluate(data, "all lfw_dev (in sample)", name, far)
    if args.held_out:
        people = np.unique(data.labels)
        rng = np.random.default_rng(5)
        chosen = set(rng.choice(people, len(people) // 2, replace=False).tolist())
        calibrate_on = np.array([i for i, label in enumerate(data.labels) if label in chosen])
        test_on = np.array([i for i, label in enumerate(data.labels) if label not in chosen])
        held = {name: held_out_curves(subset(data, calibrate_on), name) for name in names}
        shipped = operating_point.curves
        operating_point.curves = held.__getitem__  # the trace decides with curves from the other half of the people
        try:
            for name in names:
                for far in (None, 1e-4, 1e-5):
                    lines += evaluate(subset(data, test_on), "held-out half", name, far)
        finally:
            operating_point.curves = shipped
    doc = [
        "# Does a trace keep its promise?",
        "",
        f"Generated by `python tools/evaluate_trace.py{' --held-out' if args.held_out else ''}"
        f"{'' if args.scheme == 'both' else ' --scheme ' + args.scheme}` on "
        f"{datetime.date.today().isoformat()}. Every lfw_dev photo with a face found is one stored sighting (one "
        "event, one person row, a random checkpoint and time in the last 10 days, under a key the calibration "
        "never used; one store a FaceHash scheme). Each person with at least 2 photos is traced from one photo "
        "(and each with at least 3 from "
        "the mean of two, `--query-photos 2`) through the real store and `trace`. *False predicted*: the sum "
        "over traces of the header's FAR × the rows of other people searched; *false returned*: rows of other "
        "people among the sightings; *true found*: the person's other photos among the sightings; *true "
        "expected*: the header's expected share, weighted the same way. The query's own rows are left out.",
        "",
        head,
        *lines,
        "",
        "*In sample*: the curves were calibrated on these same photos. *Held-out half*: the curves were "
        "calibrated on half of the people and the store holds only the other half.",
        "",
    ]
    lfw.write_doc("TRACE_EVALUATION.md", doc, args.docs)


if __name__ == "__main__":
    main()
