"""What a contact tracer reads and runs: the report formats, the HTML timeline as a browser shows it, a query
from several photos, and the tracer's side installed without the unit's vision parts."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
import venv

import numpy as np
import pytest
from PIL import Image
from support.data import ROOT, need_data
from support.events import KEY, checked, event_of

from edge.core import facehash
from edge.tracer import report, store

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--hide-scrollbars",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def campus(tmp_path, codes):
    """Obama at the library (met Biden, then Kit twice) and at the canteen an hour later (met Rose)."""
    plan = [
        (["barack_obama/1.jpg", "joe_biden/1.jpg"], "library", 0),
        (["kit_harington/1.jpg"], "library", 600),
        (["barack_obama/2.jpg"], "library", 900),
        (["kit_harington/2.jpg"], "library", 1500),
        (["barack_obama/4.jpg"], "canteen", 4200),
        (["rose_leslie/1.jpg"], "canteen", 4500),
        (["john_lennon/1.jpg"], "canteen", 20000),  # much later: no contact
    ]
    url = str(tmp_path / "campus.sqlite")
    db = store.open_store(url)
    db.add([checked(event_of([codes[p] for p in photos], cp, s)) for photos, cp, s in plan])
    db.close()
    return url


def trace_cli(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "edge.cli", "trace", *args, "--since", f"{(3 * 86400)}s"]
    return subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT)


def test_the_table_says_what_was_searched_and_groups_contacts(campus, codes):
    text = trace_cli(codes["barack_obama/3.jpg"], "--db", campus).stdout
    assert "Searched 8 person rows of this key" in text
    assert "Threshold: within " in text and "Expected false sightings: " in text
    assert "expected share of true sightings found: " in text
    lines = text.splitlines()
    visits = [line for line in lines if line.startswith("campus/")]
    assert [v.split()[0] for v in visits] == ["campus/library", "campus/canteen"]
    assert "2 sighting(s), 2 contact(s)" in visits[0] and "1 sighting(s), 1 contact(s)" in visits[1]
    kit = next(line for line in lines if codes["kit_harington/1.jpg"][:21] in line)
    assert kit.split()[3] == "2"  # one line, seen twice
    assert "3 sighting(s) in 2 visit(s); 3 contact(s)" in text


def test_json_and_csv_carry_the_same_trace(campus, codes):
    data = json.loads(trace_cli(codes["barack_obama/3.jpg"], "--db", campus, "--format", "json").stdout)
    rows = list(
        csv.DictReader(io.StringIO(trace_cli(codes["barack_obama/3.jpg"], "--db", campus, "--format", "csv").stdout))
    )
    assert data["operating_point"]["rows_searched"] == 8
    assert [s["facehash"] for s in data["sightings"]] == [r["facehash"] for r in rows if r["kind"] == "sighting"]
    assert [s["distance"] for s in data["sightings"]] == sorted(s["distance"] for s in data["sightings"])
    contacts = [c for v in data["visits"] for c in v["contacts"]]
    assert [(c["facehash"], c["times"]) for c in contacts] == [
        (r["facehash"], int(r["times"])) for r in rows if r["kind"] == "contact"
    ]


def test_the_html_timeline_shows_each_sighting_and_contact_in_a_real_browser(campus, codes, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        pytest.fail("chromium is not installed: tools/test.sh installs it (apt-get install chromium)")
    page = tmp_path / "trace.html"
    said = trace_cli(codes["barack_obama/3.jpg"], "--db", campus, "--format", "html", "--output", str(page)).stdout
    assert "3 sighting(s) in 2 visit(s)" in said
    html = page.read_text()
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")  # nothing fetched at view time
    shot = tmp_path / "trace.png"
    subprocess.run(
        [
            chromium,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={tmp_path / 'profile'}",
            "--window-size=1000,1400",
            f"--screenshot={shot}",
            page.as_uri(),
        ],
        capture_output=True,
        timeout=60,
        check=True,
    )
    pixels = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    red = blobs(pixels, report.SIGHTING_COLOUR)
    blue = blobs(pixels, report.CONTACT_COLOUR)
    print(f"\nscreenshot: {len(red)} red sighting marks, {len(blue)} blue contact bars")
    assert len(red) == 3  # Obama twice at the library, once at the canteen
    assert len(blue) == 3  # Biden and Kit (one bar for his two sightings) at the library, Rose at the canteen
    library, canteen = sorted({y for y, _ in red})[0], sorted({y for y, _ in red})[-1]
    assert canteen - library > 60  # two timelines, one below the other


def blobs(pixels: np.ndarray, colour: str) -> list[tuple[int, int]]:
    """Top-left corners of the separate patches of one colour (4-connected), bigger than a few pixels."""
    import cv2

    target = np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)])
    mask = (np.abs(pixels - target).sum(2) < 40).astype(np.uint8)
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=4)
    return [(int(s[1]), int(s[0])) for s in stats[1:count] if s[4] >= 12]


def test_a_query_from_several_photos_is_one_facehash_and_leaves_out_a_stranger(tmp_path, codes):
    key = tmp_path / "k.key"
    key.write_text(f"{facehash.KEY_HEADER}\n{KEY.secret.hex()}\n")
    key.chmod(0o600)
    photos = [need_data("faces", "barack_obama", f"{n}.jpg") for n in (1, 2, 4)] + [
        need_data("faces", "joe_biden", "1.jpg")
    ]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "edge.cli",
            "embed",
            "--key-file",
            str(key),
            "--scheme",
            "fh1",
            "--one-person",
            *map(str, photos),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    line = json.loads(result.stdout)
    assert line["photos"] == 3 and all("barack_obama" in p for p in line["used"])
    assert [x["path"].split("/")[-2] for x in line["left_out"]] == ["joe_biden"]
    assert "--query-photos 3" in line["trace"]
    mean = facehash.parse(line["facehash"])
    alone = [
        facehash.distance(mean, codes["barack_obama/3.jpg"]),
        facehash.distance(codes["barack_obama/1.jpg"], codes["barack_obama/3.jpg"]),
    ]
    print(f"\nto Obama's 3rd photo: mean of 3 photos {alone[0]:.3f}, one photo {alone[1]:.3f}")
    assert alone[0] < alone[1]


def test_the_tracers_side_installs_and_runs_without_the_vision_parts(tmp_path, campus, codes):
    """A fresh venv with `pip install .` (no extras): collect and trace work; unit commands say what to install."""
    where = tmp_path / "venv"
    venv.create(where, with_pip=True)
    python = where / "bin" / "python"
    subprocess.run(
        [python, "-m", "pip", "install", "-q", "--disable-pip-version-check", str(ROOT)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    installed = subprocess.run([python, "-m", "pip", "list", "--format", "json"], capture_output=True, text=True)
    names = {p["name"].lower() for p in json.loads(installed.stdout)}
    assert not names & {"opencv-python-headless", "dlib-bin", "ai-edge-litert", "pillow", "gpiozero"}
    exe = where / "bin" / "traceon-edge"
    report_ = subprocess.run(
        [exe, "trace", codes["barack_obama/3.jpg"], "--db", campus, "--since", "3d"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert report_.returncode == 0, report_.stderr
    assert "3 sighting(s) in 2 visit(s)" in report_.stdout
    unit = subprocess.run(
        [exe, "embed", str(need_data("faces", "barack_obama", "1.jpg"))], capture_output=True, text=True, cwd=tmp_path
    )
    assert unit.returncode == 1 and "pip install 'traceon-edge[unit]'" in unit.stderr
