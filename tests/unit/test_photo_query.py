"""A trace query from uploaded photos: one FaceHash per key, made in memory, a clear refusal for each bad upload."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import threading
import time
import zlib

import numpy as np
import pytest
from PIL import Image, ImageFilter
from support.data import ROOT, face_photos, need_data

from edge.core import facehash
from edge.core.errors import FrameError
from edge.unit.photo_query import MAX_PHOTO_BYTES, PhotoError, PhotoQuery, hash_photos

KEYS = [facehash.Key(bytes(range(32))), facehash.Key(bytes(range(1, 33)))]
FLOATS = re.compile(r"-?\d+\.\d{3,}")  # a number an embedding, a landmark or a quality would print


def upload(*parts: str) -> tuple[str, bytes]:
    path = need_data(*parts)
    return path.name, path.read_bytes()


def jpeg(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=92)
    return out.getvalue()


def embed_one_person(tmp_path, photos, *options: str) -> dict:
    """What `traceon-edge embed --one-person` says of the same photos, under the first key."""
    key = tmp_path / "k.key"
    key.write_text(f"{facehash.KEY_HEADER}\n{KEYS[0].secret.hex()}\n")
    key.chmod(0o600)
    args = [
        sys.executable,
        "-m",
        "edge.cli",
        "embed",
        "--key-file",
        str(key),
        "--one-person",
        *options,
        *map(str, photos),
    ]
    return json.loads(subprocess.run(args, capture_output=True, text=True, check=True, cwd=ROOT).stdout)


def test_one_photo_gives_one_facehash_per_key_the_same_as_embed_one_person(tmp_path):
    query = hash_photos([upload("faces", "amy_adams", "1.jpg")], KEYS)
    assert query.photos == 1 and query.used == ["1.jpg"] and query.left_out == []
    assert sorted(query.codes) == sorted(k.id for k in KEYS)
    for key in KEYS:
        assert facehash.parse(query.codes[key.id]).key_id == key.id
    assert query.codes[KEYS[0].id] == embed_one_person(tmp_path, [need_data("faces", "amy_adams", "1.jpg")])["facehash"]


def test_several_photos_of_one_person_are_one_mean_and_a_stranger_is_left_out_by_name(tmp_path):
    paths = [need_data("faces", "barack_obama", f"{n}.jpg") for n in (1, 2, 4)]
    stranger = need_data("faces", "joe_biden", "1.jpg")
    photos = [(f"obama-{p.name}", p.read_bytes()) for p in paths] + [("biden.jpg", stranger.read_bytes())]
    query = hash_photos(photos, KEYS)
    assert query.photos == 3
    assert sorted(query.used) == ["obama-1.jpg", "obama-2.jpg", "obama-4.jpg"]
    assert [name for name, _ in query.left_out] == ["biden.jpg"]
    assert "does not look like the others" in query.left_out[0][1]
    # the same mean as the command line's, through the one shared function
    assert query.codes[KEYS[0].id] == embed_one_person(tmp_path, [*paths, stranger])["facehash"]
    one = hash_photos([photos[2]], KEYS).codes[KEYS[0].id]
    third = hash_photos([upload("faces", "barack_obama", "3.jpg")], KEYS).codes[KEYS[0].id]
    slack = 0.08 * facehash.load_scheme()["fh2"]["threshold"]  # fh1's 0.02 of its 0.24
    assert facehash.distance(query.codes[KEYS[0].id], third) <= facehash.distance(one, third) + slack


def test_the_scheme_is_the_callers_and_fh2_by_default(tmp_path):
    photo = [upload("faces", "amy_adams", "1.jpg")]
    default, fh1, fh2 = (
        hash_photos(photo, KEYS),
        hash_photos(photo, KEYS, scheme="fh1"),
        hash_photos(photo, KEYS, "fh2"),
    )
    assert default.codes == fh2.codes
    for key in KEYS:
        one, two = facehash.parse(fh1.codes[key.id]), facehash.parse(fh2.codes[key.id])
        assert (one.scheme, two.scheme) == ("fh1", "fh2") and one.key_id == two.key_id == key.id
        assert len(two.packed) == facehash.FH2_BYTES and str(two) == fh2.codes[key.id]  # parses back whole
        with pytest.raises(facehash.FaceHashError, match="different schemes"):
            facehash.distance(one, two)
    # the command line makes the same codes of the same photo, in the scheme asked for
    assert (
        embed_one_person(tmp_path, [need_data("faces", "amy_adams", "1.jpg")], "--scheme", "fh1")["facehash"]
        == (fh1.codes[KEYS[0].id])
    )


def test_of_two_photos_that_disagree_the_better_one_is_kept():
    query = hash_photos(
        [upload("faces", "barack_obama", "1.jpg"), ("biden.jpg", upload("faces", "joe_biden", "1.jpg")[1])], KEYS
    )
    assert query.used == ["1.jpg"] and [n for n, _ in query.left_out] == ["biden.jpg"]


def test_a_photo_too_blurred_to_trust_is_left_out_and_alone_it_is_refused():
    blurred = jpeg(Image.open(need_data("faces", "barack_obama", "1.jpg")).filter(ImageFilter.GaussianBlur(8)))
    query = hash_photos([upload("faces", "barack_obama", "2.jpg"), ("blurred.jpg", blurred)], KEYS)
    assert query.photos == 1 and query.left_out == [
        ("blurred.jpg", "the face is too small, blurred or turned away to trust")
    ]
    with pytest.raises(FrameError, match=r"no photo gave a face to trust \(blurred.jpg: the face is too small"):
        hash_photos([("blurred.jpg", blurred)], KEYS)


def refusal(name: str, data: bytes) -> str:
    with pytest.raises(PhotoError) as raised:
        hash_photos([upload("faces", "amy_adams", "1.jpg"), (name, data)], KEYS)
    assert raised.value.name == name and str(raised.value).startswith(f"{name}: ")
    return raised.value.why


def test_a_file_that_is_not_an_image_is_refused_by_name():
    assert refusal("notes.jpg", b"these are the case notes, not a photo\n" * 20).startswith("not a photo (JPEG, PNG")
    assert refusal("page.pdf", b"%PDF-1.7\n" + bytes(4000)).startswith("not a photo")
    assert refusal("empty.jpg", b"") == "the file is empty"
    tiff = io.BytesIO()
    Image.open(need_data("faces", "amy_adams", "1.jpg")).save(tiff, "TIFF")  # a face, in a format no upload needs
    assert refusal("face.tiff", tiff.getvalue()).startswith("not a photo (JPEG, PNG, WebP or BMP)")


def test_a_truncated_jpeg_is_refused_as_truncated():
    data = need_data("faces", "barack_obama", "1.jpg").read_bytes()
    assert "truncated or damaged" in refusal("cut.jpg", data[: len(data) // 2])


def bomb_png(width: int, height: int) -> bytes:
    """A small PNG that decodes to width × height gray pixels, all black: a decompression bomb."""
    squeeze = zlib.compressobj(9)
    row = bytes(width + 1)  # filter byte 0, then the pixels
    body = b"".join(squeeze.compress(row) for _ in range(height)) + squeeze.flush()

    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


def test_a_decompression_bomb_is_refused_from_its_header_before_decoding():
    bomb = bomb_png(9000, 9000)  # 81 MP from ~80 kB
    assert len(bomb) < 200_000
    started = time.perf_counter()
    why = refusal("bomb.png", bomb)
    assert why.startswith("it declares 9000×9000 pixels (81 MP), more than the 50 MP a photo may have")
    assert "decompression bomb" in why
    assert time.perf_counter() - started < 5  # 81 MP decoded would take longer; refused before decoding


def test_a_file_over_the_size_limit_is_refused_by_its_size_before_decoding():
    blob = b"\xff\xd8\xff\xe0" + bytes(21 * 2**20)
    assert len(blob) > MAX_PHOTO_BYTES
    assert refusal("huge.jpg", blob) == "the file is 21 MB, more than the 20 MB a photo may be"


def test_a_photo_without_a_face_is_refused():
    noise = Image.fromarray(np.random.default_rng(7).integers(0, 256, (480, 640, 3), dtype=np.uint8))
    assert refusal("noise.jpg", jpeg(noise)).startswith("no face found")
    assert refusal("wall.png", _png(Image.new("RGB", (320, 240), (90, 120, 160)))).startswith("no face found")


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def test_a_photo_with_two_faces_is_refused_and_asked_to_be_cropped():
    assert refusal("scene.jpg", upload("scenes", "two_people.jpg")[1]) == (
        "2 faces in this photo: crop it to the index case and upload it again"
    )
    left, right = (Image.open(need_data("faces", p)).convert("RGB") for p in ("amy_adams/1.jpg", "john_lennon/1.jpg"))
    height = min(left.height, right.height)
    left, right = (im.resize((im.width * height // im.height, height)) for im in (left, right))
    pair = Image.new("RGB", (left.width + right.width, height))
    pair.paste(left, (0, 0))
    pair.paste(right, (left.width, 0))
    assert refusal("pair.jpg", jpeg(pair)).startswith("2 faces in this photo: crop it to the index case")


def test_no_photo_too_many_photos_or_no_key_are_refused():
    with pytest.raises(FrameError, match="no photo given"):
        hash_photos([], KEYS)
    with pytest.raises(FrameError, match="5 photos given: at most 4"):
        hash_photos([upload("faces", "amy_adams", "1.jpg")] * 5, KEYS)
    with pytest.raises(FrameError, match="no key file given"):
        hash_photos([upload("faces", "amy_adams", "1.jpg")], [])
    with pytest.raises(ValueError, match="unknown FaceHash scheme 'fh3' \\(known: fh1, fh2\\)"):
        hash_photos([("x.jpg", b"not even a photo")], KEYS, scheme="fh3")  # said before any photo is read


def test_a_hostile_name_is_shown_escaped_and_cut():
    name = "\x1b[2J" + "a" * 200 + ".jpg"
    with pytest.raises(PhotoError) as raised:
        hash_photos([(name, b"nope")], KEYS)
    assert "\x1b" not in str(raised.value) and "\\x1b[2J" in str(raised.value) and len(str(raised.value)) < 200


def test_threads_asking_at_once_get_the_codes_one_at_a_time_would():
    photos = [upload("faces", "kit_harington", f"{n}.jpg") for n in (1, 2, 3)] + [
        upload("faces", "rose_leslie", "1.jpg")
    ]
    alone = [hash_photos([p], KEYS).codes for p in photos]
    together: list = [None] * 8
    errors: list = []

    def ask(i: int) -> None:
        try:
            together[i] = hash_photos([photos[i % 4]], KEYS).codes
        except Exception as e:  # collected, so the assertion names it
            errors.append(e)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    assert together == [alone[i % 4] for i in range(8)]


PRIVACY_RUN = """
import json, sys
from pathlib import Path
from edge.core.facehash import Key
from edge.unit.photo_query import hash_photos
keys = [Key(bytes(range(32)))]
photos = [Path(p) for p in sys.argv[1:]]
results = [hash_photos([(p.name, p.read_bytes())], keys) for p in photos]
print(json.dumps([{"codes": r.codes, "photos": r.photos, "used": r.used, "left_out": r.left_out} for r in results]))
"""


def test_twenty_photo_queries_write_no_file_and_hold_no_embedding(tmp_path):
    """In a process of its own, with HOME, TMPDIR and the working folder empty: afterwards they are still empty."""
    places = {name: tmp_path / name for name in ("home", "tmp", "work")}
    for place in places.values():
        place.mkdir()
    photos = face_photos()[:20]
    assert len(photos) == 20
    env = {"PATH": "/usr/bin:/bin", "HOME": str(places["home"]), "TMPDIR": str(places["tmp"])}
    env["PYTHONPATH"] = str(ROOT)
    result = subprocess.run(
        [sys.executable, "-c", PRIVACY_RUN, *map(str, photos)],
        capture_output=True,
        text=True,
        cwd=places["work"],
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    answers = json.loads(result.stdout)
    assert [a["photos"] for a in answers] == [1] * 20
    left_behind = sorted(str(p.relative_to(tmp_path)) for place in places.values() for p in place.rglob("*"))
    assert left_behind == []
    for answer in answers:
        assert set(answer) == {"codes", "photos", "used", "left_out"}
        for code in answer["codes"].values():  # a FaceHash of the default scheme and nothing more
            assert facehash.parse(code).scheme == "fh2" and str(facehash.parse(code)) == code
    assert not FLOATS.search(result.stdout)  # no embedding, no landmark, no quality number
    assert {f for f in PhotoQuery.__dataclass_fields__} == {"codes", "photos", "used", "left_out"}
