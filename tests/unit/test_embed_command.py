"""`traceon-edge embed`: one JSON line per face, a clear line per bad file, and the run goes on."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import zlib

import numpy as np
import pytest
from PIL import Image
from support.data import need_data

from edge.unit import embed_files
from edge.unit.vision import VisionSettings


def run_embed(paths, **kw) -> tuple[int, list[dict]]:
    out = io.StringIO()
    status = embed_files.run(paths, VisionSettings(), out=out, **kw)
    return status, [json.loads(line) for line in out.getvalue().splitlines()]


def png_16bit_gray(path, gray: np.ndarray) -> None:
    """A 16-bit grayscale PNG written by hand, so the test does not depend on an encoder's choices."""
    h, w = gray.shape
    rows = (gray.astype(">u2") * 257).tobytes()
    raw = b"".join(b"\x00" + rows[y * w * 2 : (y + 1) * w * 2] for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    header = w.to_bytes(4, "big") + h.to_bytes(4, "big") + bytes([16, 0, 0, 0, 0])
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    )


@pytest.fixture(scope="module")
def bad_and_odd_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("odd")
    photo = need_data("faces", "barack_obama", "1.jpg")
    source = Image.open(photo).convert("RGB")
    data = photo.read_bytes()
    (d / "a_corrupt.jpg").write_bytes(data[: len(data) // 2])
    (d / "b_empty.jpg").write_bytes(b"")
    (d / "c_text.jpg").write_text("this is not a photo\n")
    Image.new("RGB", (1, 1), (200, 150, 120)).save(d / "d_tiny.png")
    png_16bit_gray(d / "e_16bit.png", np.asarray(source.convert("L")))
    rgba = source.copy()
    rgba.putalpha(200)
    rgba.save(d / "f_rgba.png")
    source.convert("L").save(d / "g_gray.jpg")
    Image.new("L", (10000, 10000), 0).save(d / "h_huge.png")
    shutil.copy(photo, d / "i_good.jpg")
    return d


def test_each_bad_or_odd_file_gets_a_clear_outcome_and_the_run_goes_on(bad_and_odd_files):
    status, lines = run_embed([bad_and_odd_files])
    by_name = {}
    for line in lines:
        by_name.setdefault(line["path"].rsplit("/", 1)[1], []).append(line)
    assert status == 1  # some files failed
    assert sorted(by_name) == [
        "a_corrupt.jpg",
        "b_empty.jpg",
        "c_text.jpg",
        "d_tiny.png",
        "e_16bit.png",
        "f_rgba.png",
        "g_gray.jpg",
        "h_huge.png",
        "i_good.jpg",
    ]
    assert "damaged" in by_name["a_corrupt.jpg"][0]["error"]
    assert by_name["b_empty.jpg"][0]["error"] == "the file is empty"
    assert "not an image file" in by_name["c_text.jpg"][0]["error"]
    assert "1×1 pixels, too small" in by_name["d_tiny.png"][0]["error"]
    assert "10000×10000 pixels (100 MP), larger than" in by_name["h_huge.png"][0]["error"]
    good = by_name["i_good.jpg"][0]["embedding"]
    for name in ("e_16bit.png", "f_rgba.png", "g_gray.jpg"):
        (face,) = by_name[name]
        assert "error" not in face
        assert float(np.dot(face["embedding"], good)) > 0.9, name


def test_a_photo_without_a_face_says_faces_0(tmp_path):
    Image.new("RGB", (320, 240), (90, 120, 160)).save(tmp_path / "wall.jpg")
    status, lines = run_embed([tmp_path / "wall.jpg"])
    assert status == 0
    assert lines == [{"path": str(tmp_path / "wall.jpg"), "faces": 0}]


def test_a_missing_path_is_reported_not_fatal(tmp_path):
    status, lines = run_embed([tmp_path / "nowhere.jpg", need_data("faces", "amy_adams")])
    assert status == 1
    assert lines[0]["error"] == "no such file or folder"
    assert len(lines[1]["embedding"]) == 128


def test_face_lines_have_the_documented_fields():
    status, lines = run_embed([need_data("scenes", "two_people.jpg")])
    assert status == 0
    assert len(lines) == 2
    for line in lines:
        assert set(line) == {"path", "box", "quality", "embedding"}
        assert set(line["quality"]) == {"score", "size", "sharpness", "frontalness", "profile"}
        assert len(line["box"]) == 4
        assert abs(np.linalg.norm(line["embedding"]) - 1) < 1e-4


def test_video_frames_carry_their_index():
    status, lines = run_embed([need_data("video", "short_hamilton_clip.mp4")], every=25)
    assert status == 0
    frames = sorted({line["frame"] for line in lines})
    assert frames[0] == 0
    assert all(f % 25 == 0 for f in frames)
    assert sum("embedding" in line for line in lines) >= 3


def test_the_command_line_with_jobs_gives_the_same_lines_in_the_same_order(tmp_path):
    (tmp_path / "text.jpg").write_text("no")
    args = [
        sys.executable,
        "-m",
        "edge.cli",
        "embed",
        str(need_data("faces", "kit_harington")),
        str(tmp_path),
    ]
    one = subprocess.run(args, capture_output=True, text=True, check=False)
    two = subprocess.run([*args, "--jobs", "2"], capture_output=True, text=True, check=False)
    assert one.returncode == two.returncode == 1
    a = [json.loads(line) for line in one.stdout.splitlines()]
    b = [json.loads(line) for line in two.stdout.splitlines()]
    assert [x["path"] for x in a] == [x["path"] for x in b]
    assert len(a) == 4
    for x, y in zip(a, b, strict=True):
        if "embedding" in x:
            assert np.abs(np.subtract(x["embedding"], y["embedding"])).max() < 1e-5


def test_with_a_key_the_lines_carry_facehashes_and_no_embeddings_unless_asked(tmp_path):
    from edge.core import facehash

    key_path = tmp_path / "unit.key"
    key = facehash.write_key_file(key_path)
    photo = need_data("faces", "rose_leslie")
    base = [sys.executable, "-m", "edge.cli", "embed", "--key-file", str(key_path), str(photo)]
    plain = subprocess.run(base, capture_output=True, text=True, check=True)
    raw = subprocess.run([*base, "--raw-embeddings"], capture_output=True, text=True, check=True)
    old = subprocess.run([*base, "--scheme", "fh1"], capture_output=True, text=True, check=True)
    a, b, c = ([json.loads(line) for line in run.stdout.splitlines()] for run in (plain, raw, old))
    assert len(a) == len(b) == len(c) == 2
    assert all("embedding" not in line and line["facehash"].startswith(f"fh2:{key.id}:") for line in a)  # default
    assert all(len(line["embedding"]) == 128 for line in b)
    assert [x["facehash"] for x in a] == [y["facehash"] for y in b]
    assert all("embedding" not in line and facehash.parse(line["facehash"]).scheme == "fh1" for line in c)
    scheme = facehash.load_scheme()
    assert facehash.distance(a[0]["facehash"], a[1]["facehash"]) <= scheme["fh2"]["threshold"]
    assert facehash.distance(c[0]["facehash"], c[1]["facehash"]) <= scheme["thresholds"]["1024"]


def test_keygen_and_a_loose_key_file_from_the_command_line(tmp_path):
    key_path = tmp_path / "unit.key"
    made = subprocess.run([sys.executable, "-m", "edge.cli", "keygen", str(key_path)], capture_output=True, text=True)
    assert made.returncode == 0 and "mode 0600" in made.stdout
    again = subprocess.run([sys.executable, "-m", "edge.cli", "keygen", str(key_path)], capture_output=True, text=True)
    assert again.returncode == 1 and "already exists" in again.stderr
    key_path.chmod(0o644)
    args = [sys.executable, "-m", "edge.cli", "embed", "--key-file", str(key_path), str(tmp_path)]
    refused = subprocess.run(args, capture_output=True, text=True)
    assert refused.returncode == 1
    assert refused.stdout == ""
    assert f"chmod 600 {key_path}" in refused.stderr
