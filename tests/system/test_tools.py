"""Every benchmark, calibration and evaluation script in tools/ runs to its table at a tiny size (issue 18, item 9).

Each runs as its own process from the checkout's root, as someone measuring would run it, and must finish and
print its table; the figures are not checked (at this size they mean nothing). What a script stores or sends it
makes with the project's own code (tools/unit_events.py builds events with edge.unit.sighting; edge.unit.outbox,
edge.tracer.intake and edge.tracer.store keep them), so a change to the event, the outbox or the store breaks a
test here instead of next month's measurement. A quick run writes into tmp_path, never into models/ or docs/ (the
scripts refuse a quick run that would).

Not here: tools/build_model.py and tools/build_detector.py need TensorFlow (tools/requirements-build.txt), which
the test environment does not install; tools/bench_trace.py is smoke-tested with its own repair; tools/gen_docs.py
is run by test_docs.py. The library files (lfw.py, servers.py, dlib_dat.py, dlib_resnet.py, unit_events.py) run
through the scripts.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest
from support.data import ROOT, need_data


def run_tool(script: str, *args, timeout: float = 240) -> str:
    """stdout of `python tools/SCRIPT ARGS…` run from the checkout's root; it must exit 0."""
    command = [sys.executable, str(ROOT / "tools" / script), *map(str, args)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{script} exited {result.returncode}:\n{result.stderr[-4000:]}"
    return result.stdout


def shipped_files() -> dict[str, tuple[int, int]]:
    """What is in models/ and docs/ (size, modification time): a quick run must leave it as it was."""
    files = sorted(p for folder in ("models", "docs") for p in (ROOT / folder).iterdir())
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in files}


# --- the unit's side: outbox, broker link, daemon, pipeline ------------------------------------------------


def test_bench_outbox():
    out = run_tool("bench_outbox.py", "--events", 200, "--puts", 20)
    assert "events of" in out and "(one person) filled in" in out
    assert "put into an empty outbox: median" in out and "put into a full outbox:" in out
    assert "depth 200, dropped 20" in out  # every put into the full outbox dropped the oldest


def test_bench_delivery():
    out = run_tool("bench_delivery.py", "--events", 10, "--delays", "0,20")
    assert "outbox drain through the broker link, 10 events of" in out
    for row in ("+  0 ms, in_flight  1:", "+  0 ms, in_flight 20:", "+ 20 ms: in_flight 20 drains"):
        assert row in out
    assert "all in commit order" in out and "NOT ALL IN ORDER" not in out


def test_bench_burst():
    need_data("faces", "barack_obama", "1.jpg")
    out = run_tool("bench_burst.py", "--bursts", 1, "--people", 2, "--repeat", 1)
    assert "traceon-edge burst benchmark: 1 bursts of 10 frames" in out
    assert "trigger → PUBACK   median" in out and "(persons per event:" in out
    assert "baseline in-process: detect+embed+group+hash" in out
    assert "2 triggers 300 ms apart:" in out and "bursts dropped while vision was busy" in out
    assert "peak RSS of the daemon (VmHWM)" in out


def test_bench_embed(dlib_float):
    need_data("faces")
    out = run_tool("bench_embed.py", "--repeat", 1, "--bursts", 1, "--frames", 3, "--photos", 2)
    assert "traceon-edge pipeline benchmark, one thread" in out
    for row in (
        "dlib float compute_face_descriptor",
        "int8 TFLite, batch of 8 (per face)",
        "detect, 1280×720 frame: hog+yunet",
        "whole 1280×720 frame, one face, detect + align + embed: yunet",
        "sustained 640×480, one face a frame, searched whole every 3, 2 core(s)",
        "same, every frame whole, 2 worker processes",
        "face_recognition's steps with dlib float, 1 core",
        "peak RSS of `traceon-edge embed` over 2 sample photos",
    ):
        assert row in out


def test_profile_burst():
    need_data("faces", "barack_obama", "1.jpg")
    out = run_tool("profile_burst.py", "--repeat", 1)
    assert "one burst of 10 frames, 1280×720, one face, one thread" in out
    for row in (
        "HOG near the face it follows",
        "event: build, schema check, JSON",
        "outbox commit (fsync)",
        "publish → PUBACK, loopback",
        "total (decode included)",
    ):
        assert row in out


# --- the FaceHash and the trace: calibrations and evaluations on a part of lfw_dev --------------------------


def test_calibrate_facehash_writes_its_scheme_elsewhere(tmp_path):
    need_data("lfw_dev", "pairsDevTrain.txt")
    before = shipped_files()
    models, docs = tmp_path / "models", tmp_path / "docs"
    models.mkdir(), docs.mkdir()
    shipped_scheme = json.loads((ROOT / "models" / "facehash.json").read_text())
    (models / "facehash.json").write_text(json.dumps(shipped_scheme))
    compare = ["<!-- begin compare_schemes -->", "the candidates of issue 21", "<!-- end compare_schemes -->"]
    (docs / "FACEHASH.md").write_text("\n".join(["# old", "", *compare]))
    out = run_tool("calibrate_facehash.py", "--pairs-each", 10, "--models", models, "--docs", docs)
    assert "pairs; int8 cosine: accuracy" in out
    assert "| scheme | 128 bits |" in out and "| thermometer, 5 levels, span ±2.0σ |" in out
    assert "chosen:" in out and "| bits | threshold |" in out
    from edge.core.facehash import FaceHasher, Key

    scheme = json.loads((models / "facehash.json").read_text())
    FaceHasher(Key(b"k" * 32), scheme)  # what it writes, the unit can hash with
    assert scheme["fh2"] == shipped_scheme["fh2"]  # fh2's block is not this tool's to drop
    doc = (docs / "FACEHASH.md").read_text()
    assert doc.startswith("# FaceHash schemes measured on lfw_dev") and "\n".join(compare) in doc
    assert shipped_files() == before


def test_calibrate_trace_writes_its_curves_elsewhere(tmp_path):
    need_data("lfw_dev", "images")
    before = shipped_files()
    models, docs = tmp_path / "models", tmp_path / "docs"
    out = run_tool("calibrate_trace.py", "--people", 8, "--scheme", "both", "--models", models, "--docs", docs)
    assert "| `fh1` 1024 bits (Hamming) |" in out and "| `fh2` (Euclidean, code units) |" in out
    assert "| fh1, mean of 4 photo(s) |" in out and "| fh2, mean of 4 photo(s) |" in out
    assert "| fh2, 2 FaceHashes (one photo each), nearer counts, FAR/2 each |" in out
    assert "| fh2, 1 photo(s) |" in out.split("## Burst-mean rows")[1]  # burst rows, each scheme
    from edge.tracer import operating_point

    for name in ("facehash_operating.json", "facehash_operating_fh2.json"):  # what a trace reads, each scheme
        curves = json.loads((models / name).read_text())
        assert set(curves["lengths"]["1024"]) == {"1", "2", "3", "4"}
        curve = operating_point.Curve.from_json(curves["lengths"]["1024"]["1"])
        assert len(curve.far) == len(curve.tar) and curve.distance_at(1e-2) >= 0
    assert (docs / "TRACING_CALIBRATION.md").exists()
    assert shipped_files() == before


def test_evaluate_writes_its_tables_elsewhere(tmp_path, dlib_float):
    need_data("lfw_dev", "pairsDevTrain.txt")
    need_data("faces")
    before = shipped_files()
    accuracy = tmp_path / "ACCURACY.md"
    out = run_tool("evaluate.py", "--pairs-each", 5, "--impostors", 1000, "--faces", 3, "--out", accuracy)
    assert "| (c) int8 (shipped) |" in out and "| FaceHash 1024 bits |" in out
    assert "### Across keys (1,024 bits)" in out and "## Every pair of photos in `faces/` (3 photos, 3 pairs)" in out
    assert accuracy.read_text().startswith("# Accuracy of the face embedder")
    out = run_tool("evaluate.py", "--detectors", "--pairs-each", 5, "--docs", tmp_path)
    assert "| `hog+yunet` (default) |" in out and "| hog on the gray copy (before) |" in out
    assert (tmp_path / "DETECTION.md").exists()
    assert shipped_files() == before


def test_evaluate_best_k():
    need_data("video", "short_hamilton_clip.mp4")
    need_data("lfw_dev", "images")
    out = run_tool("evaluate_best_k.py", "--clip-frames", "90:150", "--people", 4)
    assert "persons hashed in 6 bursts" in out and "| best 3 |" in out and "| every view |" in out
    assert "lfw_dev, bursts of 3 photos:" in out and "lfw_dev, bursts of 2 photos:" in out
    assert "Embedding a 10-frame burst's 10 chips:" in out


def test_evaluate_trace_stores_unit_events_and_writes_elsewhere(tmp_path):
    need_data("lfw_dev", "images")
    before = shipped_files()
    out = run_tool("evaluate_trace.py", "--held-out", "--people", 8, "--docs", tmp_path)
    assert "| data | scheme | query photos | budget | traces | rows |" in out
    for scheme in ("fh1", "fh2"):  # fh2 beside fh1, each in sample and held out
        assert f"| all lfw_dev (in sample) | {scheme} | 2 | --far 1e-05 |" in out
        assert f"| held-out half | {scheme} | 1 | --max-false 1 |" in out
    assert (tmp_path / "TRACE_EVALUATION.md").read_text().startswith("# Does a trace keep its promise?")
    assert shipped_files() == before


def test_a_quick_run_may_not_write_into_models_or_docs(tmp_path):
    """The guard each calibration and evaluation calls after reading its options (in-process: a guard that
    failed in a script would overwrite the shipped files)."""
    import lfw

    parser = argparse.ArgumentParser()
    for shipped in (ROOT / "models", ROOT / "docs"):
        with pytest.raises(SystemExit):
            lfw.quick_run_writes_elsewhere(parser, True, tmp_path, shipped)
        lfw.quick_run_writes_elsewhere(parser, False, shipped)  # a full run writes them: that is its purpose
    lfw.quick_run_writes_elsewhere(parser, True, tmp_path / "models", tmp_path / "docs")


def test_bench_flood():
    out = run_tool("bench_flood.py", "--flood", 20, "--persons", 40)
    assert "100 events of 40 persons from unit-9, handled in" in out
    assert "trace of the person:" in out and "2 contact(s)" in out  # the traced person's companion and unit-9's last
    assert "unit-2's event sent after them was stored" in out
    assert "stored 3 events, 4 person rows; set aside 120 events" in out


def test_compare_schemes_writes_its_section_elsewhere(tmp_path):
    need_data("lfw_dev", "images")
    before = shipped_files()
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "FACEHASH.md").write_text("# FaceHash schemes measured on lfw_dev\n\nkept\n")
    out = run_tool("compare_schemes.py", "--people", 20, "--keys", 1, "--docs", docs)
    assert "| **fh2**: int8 centred rotation, Euclidean | 1024 |" in out and "### The insider" in out
    assert "| fh2 | 8 | Procrustes |" in out and "rows kept |" in out
    doc = (docs / "FACEHASH.md").read_text()
    assert doc.startswith("# FaceHash schemes measured on lfw_dev\n\nkept\n") and "<!-- end compare_schemes -->" in doc
    assert shipped_files() == before


def test_measure_rekey_writes_its_section_elsewhere(tmp_path):
    need_data("lfw_dev", "images")
    before = shipped_files()
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "KEY_EPOCHS.md").write_text("# Key epochs\n\n## On the unit\n\nkept\n")
    out = run_tool("measure_rekey.py", "--people", 12, "--key-pairs", 1, "--docs", docs)
    for scheme in ("fh2", "fh1"):  # native beside re-keyed, each scheme
        assert f"| {scheme} | native |" in out and f"| {scheme} | re-keyed |" in out
    assert "**Decision:" in out and "It needs both keys" in out
    doc = (docs / "KEY_EPOCHS.md").read_text()
    assert doc.startswith("# Key epochs\n\n## On the unit\n\nkept\n") and "<!-- end measure_rekey -->" in doc
    assert "## Re-keying" in doc
    assert shipped_files() == before
    with pytest.raises(AssertionError, match="quick run must not overwrite"):  # a quick run into docs/ is refused
        run_tool("measure_rekey.py", "--people", 12, "--key-pairs", 1)
