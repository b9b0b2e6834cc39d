"""The console's photo trace hashes in the scheme the store holds of the deployment's key: fh2 when it holds fh2
rows (what units publish by default), fh1 for a store of fh1 units only; pasted FaceHashes of either scheme work."""

from __future__ import annotations

import io

import pytest
from starlette.testclient import TestClient
from support import schemes
from support.console import console_setup, form_token, key_file, sign_in
from support.data import need_data
from support.events import event_of

from edge.console.app import build_app
from edge.tracer import store


def stored(tmp_path, embeddings, which: tuple[str, ...]) -> str:
    """A store with Obama's 1st photo seen by an fh2 unit at north/door and his 2nd by an fh1 unit at north/hall."""
    path = str(tmp_path / "sightings.db")
    made = []
    if "fh2" in which:
        made.append(schemes.event([str(schemes.hasher("fh2").hash(embeddings["barack_obama/1.jpg"]))], "door", 0))
    if "fh1" in which:
        made.append(event_of([str(schemes.hasher("fh1").hash(embeddings["barack_obama/2.jpg"]))], "hall", 60))
    db = store.open_store(path)
    db.add([schemes.checked(m | {"site": "north"}) for m in made])
    db.close()
    return path


def tess(tmp_path, path: str) -> TestClient:
    setup = console_setup(tmp_path, path, key_files=(key_file(tmp_path),))
    client = TestClient(build_app(setup.settings), base_url="http://127.0.0.1", raise_server_exceptions=False)
    assert sign_in(client, "tess").status_code == 303
    return client


def trace(client, photo: bool = True, facehashes: str = ""):
    form = {"csrf": form_token(client.get("/trace").text), "case_id": "C-21", "reason": "index case", "since": "14d"}
    if not photo:
        return client.post("/trace", data=form | {"facehashes": facehashes})
    image = need_data("faces", "barack_obama", "3.jpg").read_bytes()
    return client.post("/trace", data=form, files=[("photos", ("3.jpg", io.BytesIO(image), "image/jpeg"))])


@pytest.mark.parametrize(
    ("held", "found", "words"),
    [
        (("fh1", "fh2"), "north/door", "(fh2 code units)"),
        (("fh2",), "north/door", "(fh2 code units)"),
        (("fh1",), "north/hall", " bits of 1024"),
    ],
)
def test_a_photo_is_traced_in_the_scheme_the_store_holds(tmp_path, embeddings, held, found, words):
    answer = trace(tess(tmp_path, stored(tmp_path, embeddings, held)))
    assert answer.status_code == 200, answer.text[-2000:]
    assert found in answer.text and words in answer.text
    (other,) = {"north/door", "north/hall"} - {found}
    assert other not in answer.text  # the other scheme's row: another scheme's code, however alike the faces


def test_pasted_facehashes_of_either_scheme_trace_their_own_rows(tmp_path, embeddings):
    client = tess(tmp_path, stored(tmp_path, embeddings, ("fh1", "fh2")))
    for scheme, found, missing in (("fh1", "north/hall", "north/door"), ("fh2", "north/door", "north/hall")):
        code = str(schemes.hasher(scheme).hash(embeddings["barack_obama/3.jpg"]))
        answer = trace(client, photo=False, facehashes=code)
        assert answer.status_code == 200 and found in answer.text and missing not in answer.text, scheme
    both = [str(schemes.hasher(s).hash(embeddings["barack_obama/3.jpg"])) for s in ("fh1", "fh2")]
    answer = trace(client, photo=False, facehashes="\n".join(both))
    assert answer.status_code == 400 and "one scheme" in answer.text and "Traceback" not in answer.text
