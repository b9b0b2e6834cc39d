"""Issue 20, must show 5: after 20 photo traces through the served console (HTTP uploads of real photos), no file
the console could write (its database and the SQLite -wal/-shm beside it, every file of its folder, and the
TMPDIR it was given) and no column of any table holds the photos' bytes, image magic, an embedding or a list of
numbers. It scans as the unit's privacy test (tests/unit/test_daemon.py) does, and also looks for each photo's
own embedding, computed by the unit's pipeline, as float32 and float64 bytes and as text rounded to 4–6 digits.
"""

from __future__ import annotations

import io
import re
import sqlite3
import tempfile
from pathlib import Path

import httpx
import numpy as np
import pytest
from support.console import PASSWORD, Served, console_setup, form_token, key_file, store_events
from support.data import face_photos

from edge.unit.vision.media import read_image

TRACES = 20
WINDOW = 64  # a copy of any 64 bytes of an uploaded photo counts as the photo kept
JPEG, PNG = b"\xff\xd8\xff", b"\x89PNG\r\n"
FLOATS = re.compile(rb"-?\d+\.\d+(e-?\d+)?(\s*[,;\s]\s*-?\d+\.\d+(e-?\d+)?){7,}")  # 8 or more decimals in a row
INTEGERS = re.compile(rb"\[\s*-?\d+(\s*,\s*-?\d+){7,}")  # an int8 embedding, a landmark list
OPAQUE = re.compile(rb"[A-Za-z0-9+/=_-]{120,}")  # base64 of a crop or an embedding
FACEHASH = re.compile(rb"fh1:[a-z2-7]{8}:[a-z2-7]{20,206}")  # the one long opaque string allowed to be stored


def windows(data: bytes) -> set[bytes]:
    """The photo's aligned windows, those of one or a few byte values aside (a run of zeros or padding is in
    every database page and says nothing of a photo)."""
    cut = (data[i : i + WINDOW] for i in range(0, len(data) - WINDOW + 1, WINDOW))
    return {w for w in cut if len(set(w)) >= 16}


def holds_window(data: bytes, photo_windows: set[bytes]) -> bool:
    """Whether any WINDOW bytes of `data` at any offset are an aligned window of a photo: a copy of 2×WINDOW
    bytes or more of a photo, at any offset in it, always contains one."""
    view = memoryview(data)
    return any(bytes(view[i : i + WINDOW]) in photo_windows for i in range(len(data) - WINDOW + 1))


def embedding_patterns(vector: np.ndarray) -> list[tuple[str, bytes]]:
    """What an embedding looks like when written: 8 values in a row as float32 or float64 bytes (as found and
    L2-normalised), the int8 quantised values, and the first values as text rounded to 4, 5 and 6 digits."""
    v = np.asarray(vector, dtype=np.float64).ravel()
    found = []
    for name, values in (("raw", v), ("normalised", v / np.linalg.norm(v))):
        for start in (0, 60, 120):
            found.append((f"{name} float32 [{start}:]", values[start : start + 8].astype("<f4").tobytes()))
            found.append((f"{name} float64 [{start}:]", values[start : start + 8].astype("<f8").tobytes()))
        for digits in (4, 5, 6):
            for sep in (", ", ",", " "):
                text = sep.join(f"{x:.{digits}f}" for x in values[:4])
                found.append((f"{name} text {digits} digits", text.encode()))
    quantised = np.clip(np.round(v / np.linalg.norm(v) * 127 / np.abs(v / np.linalg.norm(v)).max()), -128, 127)
    found.append(("int8", quantised.astype(np.int8).tobytes()[:32]))
    return found


def generic_leaks(data: bytes) -> list[str]:
    """As the unit's privacy test: image magic, a list of numbers, a long opaque string (FaceHashes aside)."""
    data = FACEHASH.sub(b"fh1:", data)
    found = [n for n, p in (("float list", FLOATS), ("integer list", INTEGERS), ("opaque", OPAQUE)) if p.search(data)]
    return found + [name for name, magic in (("JPEG", JPEG), ("PNG", PNG)) if magic in data]


def dump_tables(path: Path) -> dict[str, bytes]:
    """Every column of every table of the SQLite file, by table: text as UTF-8, blobs as they are."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        dumped = {}
        for table in tables:
            parts = []
            for row in db.execute(f'SELECT * FROM "{table}"'):
                for value in row:
                    parts.append(value if isinstance(value, bytes) else str(value).encode())
            dumped[table] = b"\x00".join(parts)
        return dumped
    finally:
        db.close()


@pytest.fixture
def served_world(tmp_path, monkeypatch, embeddings, hasher):
    """The console over an SQLite store of real FaceHashes, given its own TMPDIR, served by uvicorn."""
    folder, spool = tmp_path / "console", tmp_path / "tmpdir"
    folder.mkdir()
    spool.mkdir()
    monkeypatch.setenv("TMPDIR", str(spool))
    monkeypatch.setattr(tempfile, "tempdir", None)  # tempfile reads TMPDIR again
    assert tempfile.gettempdir() == str(spool)
    codes = [str(hasher.hash(e)) for e in embeddings.values()]
    path = folder / "sightings.db"
    store_events(str(path), [("north", "door", 60 * i, codes[i : i + 3]) for i in range(0, len(codes), 3)])
    setup = console_setup(folder, str(path), key_files=(key_file(folder),))
    with Served(setup.settings) as served:
        yield served, folder, spool


def test_twenty_photo_traces_leave_no_photo_embedding_or_crop_anywhere(served_world, pipeline):
    served, folder, spool = served_world
    photos = face_photos()
    uploaded = [photos[i % len(photos)] for i in range(TRACES)]
    with httpx.Client(base_url=served.url, timeout=60, follow_redirects=True) as client:
        login_token = form_token(client.get("/login").text)
        signed = client.post("/login", data={"name": "tess", "password": PASSWORD, "csrf": login_token})
        assert signed.status_code == 200 and "Trace a case" in signed.text
        for n, path in enumerate(uploaded, 1):
            token = form_token(client.get("/trace").text)
            form = {"csrf": token, "case_id": f"C-{n}", "reason": "photo trace", "since": "14d", "stride": "30m"}
            answer = client.post(
                "/trace", data=form, files=[("photos", (path.name, io.BytesIO(path.read_bytes()), "image/jpeg"))]
            )
            assert answer.status_code == 200 and f"Trace {n}" in answer.text, (path, answer.text[-2000:])
        assert client.get(f"/trace/{TRACES}/export.csv").status_code == 200  # kept: the newest few

    files = sorted(p for p in [*folder.rglob("*"), *spool.rglob("*")] if p.is_file())
    assert any(p.name == "sightings.db" for p in files)
    assert not list(spool.rglob("*")), "nothing was spooled to TMPDIR"
    raw = {str(p.relative_to(folder.parent)): p.read_bytes() for p in files}
    raw |= {f"table {t}": data for t, data in dump_tables(folder / "sightings.db").items()}

    photo_windows = set().union(*(windows(p.read_bytes()) for p in set(uploaded)))
    patterns = []
    for p in sorted(set(uploaded)):
        faces = pipeline.process(read_image(p))
        assert len(faces) == 1 and faces[0].embedding is not None, p
        patterns += [
            (f"{p.parent.name}/{p.name} {name}", data) for name, data in embedding_patterns(faces[0].embedding)
        ]

    found = []
    for where, data in raw.items():
        if holds_window(data, photo_windows):
            found.append(f"{where}: bytes of an uploaded photo")
        found += [f"{where}: {name}" for name, pattern in patterns if pattern in data]
        found += [f"{where}: {leak}" for leak in generic_leaks(data)]
    assert found == [], found
    print(
        f"\nscanned {len(files)} files ({sum(len(d) for d in raw.values())} bytes with the table dumps): nothing kept"
    )


def test_the_scan_finds_what_it_looks_for(pipeline):
    """The scan itself, on planted copies: a photo's 100 bytes at an odd offset, its embedding as float32, and
    the same as text, are each found."""
    photo = face_photos()[0].read_bytes()
    embedding = pipeline.process(read_image(face_photos()[0]))[0].embedding
    assert holds_window(b"x" * 13 + photo[1001 : 1001 + 2 * WINDOW] + b"y", windows(photo))
    assert not holds_window(b"x" * 13 + photo[1001 : 1001 + WINDOW - 1], windows(photo))
    planted = b"row" + np.asarray(embedding, dtype=np.float32).tobytes() + b"end"
    assert any(p in planted for _, p in embedding_patterns(embedding))
    as_text = ", ".join(f"{x:.5f}" for x in np.asarray(embedding, dtype=np.float64)).encode()
    assert any(p in as_text for _, p in embedding_patterns(embedding)) and generic_leaks(as_text) == ["float list"]
