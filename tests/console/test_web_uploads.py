"""Photos uploaded to the trace page: parsed in memory only, bounded in size and number, and each bad one refused
with the form back and a reason (nothing is traced, nothing audited, nothing written)."""

from __future__ import annotations

import asyncio
import io

import numpy as np
import pytest
from starlette.datastructures import Headers
from starlette.testclient import TestClient
from support.console import console_setup, form_token, key_file, random_person, sign_in, store_events
from support.data import need_data

from edge.console import audit, security
from edge.console.app import build_app
from edge.console.views.uploads import InMemoryParser


@pytest.fixture
def setup(tmp_path):
    path = str(tmp_path / "sightings.db")
    store_events(path, [("north", "door", 0, [random_person(np.random.default_rng(1))])])
    return console_setup(tmp_path, path, key_files=(key_file(tmp_path),))


@pytest.fixture
def tess(setup):
    client = TestClient(build_app(setup.settings), base_url="http://127.0.0.1", raise_server_exceptions=False)
    assert sign_in(client, "tess").status_code == 303
    return client


def upload(client, files: list[tuple[str, bytes]]):
    token = form_token(client.get("/trace").text)
    form = {"csrf": token, "case_id": "C-9", "reason": "index case"}
    return client.post("/trace", data=form, files=[("photos", (n, io.BytesIO(b), "image/jpeg")) for n, b in files])


def no_trace_audited(setup) -> bool:
    db = setup.db()
    try:
        return audit.entries(db, action="trace") == []
    finally:
        db.close()


def test_the_parser_keeps_a_20_mb_photo_in_memory():
    body = (
        b'--b\r\nContent-Disposition: form-data; name="photos"; filename="a.jpg"\r\n'
        b"Content-Type: image/jpeg\r\n\r\n" + b"\xff" * security.PHOTO_BYTES + b"\r\n--b--\r\n"
    )

    async def stream():
        for start in range(0, len(body), 1 << 20):
            yield body[start : start + (1 << 20)]

    headers = Headers({"content-type": "multipart/form-data; boundary=b"})
    parsed = asyncio.run(InMemoryParser(headers, stream()).parse())
    photo = parsed["photos"]
    assert photo.size == security.PHOTO_BYTES
    assert not photo.file._rolled, "the photo went to a temporary file"


def test_a_body_beyond_four_photos_of_20_mb_is_refused_before_it_is_read(tess, setup):
    token = form_token(tess.get("/trace").text)
    huge = b"x" * (security.UPLOAD_LIMIT + 1)
    answer = tess.post("/trace", data={"csrf": token}, files={"photos": ("big.jpg", huge, "image/jpeg")})
    assert answer.status_code == 413
    assert "four photos of at most 20 MB" in answer.text
    assert no_trace_audited(setup)


def test_a_photo_over_20_mb_is_refused_by_name(tess, setup):
    answer = upload(tess, [("fifty.jpg", b"\xff" * (security.PHOTO_BYTES + 1))])
    assert answer.status_code == 400
    assert "fifty.jpg is larger than 20 MB" in answer.text
    assert no_trace_audited(setup)


def test_five_photos_are_refused(tess, setup):
    answer = upload(tess, [(f"{n}.jpg", b"\xff\xd8" + bytes(10)) for n in range(5)])
    assert answer.status_code == 400
    assert "at most 4 photos" in answer.text
    assert no_trace_audited(setup)


def test_a_file_that_is_not_an_image_is_refused_with_its_name(tess, setup):
    answer = upload(tess, [("notes.jpg", b"%PDF-1.7 this is not a photo")])
    assert answer.status_code == 400
    assert "notes.jpg" in answer.text and 'id="why"' in answer.text
    assert no_trace_audited(setup)


def png(width: int, height: int) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("L", (width, height), 128).save(out, "PNG")
    return out.getvalue()


@pytest.mark.parametrize(
    "name, content",
    [
        ("grey.png", lambda: png(400, 300)),  # no face
        ("bomb.png", lambda: png(12_000, 12_000)),  # 144 MP of one colour: a few hundred kB compressed
        ("cut.jpg", lambda: need_data("faces", "joe_biden", "1.jpg").read_bytes()[:3000]),  # truncated
    ],
)
def test_a_photo_that_cannot_be_used_is_refused_by_name(tess, setup, name, content):
    answer = upload(tess, [(name, content())])
    assert answer.status_code == 400
    assert name in answer.text and 'id="why"' in answer.text and "Traceback" not in answer.text
    assert no_trace_audited(setup)
