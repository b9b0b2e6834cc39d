"""The console's photo trace with the tracer's key chain (issue 22): a photo is hashed under every epoch key of the
window the chain still holds and traced once over all of them; once the chain has moved past an epoch, the console
can no longer make that epoch's FaceHash, even against a copy of the store taken before."""

from __future__ import annotations

import io
import secrets
import subprocess
import sys
import time

import pytest
from starlette.testclient import TestClient
from support import schemes
from support.console import console_setup, form_token, sign_in
from support.data import ROOT, need_data

from edge.console.app import build_app
from edge.core import events, facehash, keychain
from edge.core import schemes as core_schemes
from edge.core.facehash import Key
from edge.tracer import store


@pytest.fixture
def world(tmp_path, embeddings):
    """A daily chain at e = three days ago, alex_lacamoire seen at north/door in e and at south/door in e+1."""
    start = keychain.Chain(Key(secrets.token_bytes(32)), "1d")
    held = keychain.Chain(start.key, "1d", start.epoch_of(time.time()) - 3)
    chain_path = tmp_path / "tracer.chain"
    chain_path.write_text(held.text())
    chain_path.chmod(0o600)
    made = []
    for epoch, door, photo in ((held.epoch, "north-door", "2.jpg"), (held.epoch + 1, "south-door", "3.jpg")):
        key = held.key_at(epoch)
        code = str(core_schemes.hasher(key, facehash.load_scheme(), "fh2").hash(embeddings[f"alex_lacamoire/{photo}"]))
        at = held.start_of(epoch).timestamp() + 12 * 3600
        body = schemes.body(
            [code], door, 0, "fh2", key_id=key.id, started_at=events.utc(at), ended_at=events.utc(at + 1)
        )
        made.append(schemes.checked(events.validate(body)))
    db_url = str(tmp_path / "sightings.sqlite")
    db = store.open_store(db_url)
    db.add(made)
    db.close()
    setup = console_setup(tmp_path, db_url, key_chains=(chain_path,))
    client = TestClient(build_app(setup.settings), base_url="http://127.0.0.1", raise_server_exceptions=False)
    assert sign_in(client, "tess").status_code == 303
    return held, chain_path, client


def photo_trace(client, since: str = "14d"):
    form = {"csrf": form_token(client.get("/trace").text), "case_id": "C-22", "reason": "index case", "since": since}
    image = need_data("faces", "alex_lacamoire", "1.png").read_bytes()
    return client.post("/trace", data=form, files=[("photos", ("1.png", io.BytesIO(image), "image/png"))])


def test_a_photo_is_traced_across_every_epoch_the_chain_holds(world):
    held, _, client = world
    answer = photo_trace(client)
    assert answer.status_code == 200, answer.text[-2000:]
    assert "north-door" in answer.text and "south-door" in answer.text  # both epochs' sightings, one trace
    for epoch in (held.epoch, held.epoch + 1):
        assert f"key {held.key_at(epoch).id}: 1 rows seen" in answer.text
    assert "in 2 epochs" in answer.text  # of e … today, those the store holds rows of


def test_once_the_chain_has_moved_past_the_epochs_the_console_cannot_trace_them(world, tmp_path):
    held, chain_path, client = world
    assert photo_trace(client).status_code == 200  # the console has used the chain once before it moves
    keychain.move_forward(chain_path, held, held.epoch + 2)  # what the collector's retention does
    answer = photo_trace(client)  # read again at each trace: no restart needed for the erasure to hold
    assert answer.status_code == 400 and "Traceback" not in answer.text
    assert "holds no sightings under the key(s) the console was given for this window" in answer.text
    assert f"the key of {held.name(held.epoch - 11)} is gone" in answer.text
    for epoch in (held.epoch, held.epoch + 1):
        assert held.key_at(epoch).id not in answer.text


def test_the_console_refuses_a_chain_file_it_cannot_use_at_start(tmp_path):
    loose = tmp_path / "loose.chain"
    loose.write_text(keychain.Chain(Key(secrets.token_bytes(32)), "1d", 20000).text())
    loose.chmod(0o644)
    audit_key = tmp_path / "audit.key"
    assert cli("audit", "keygen", str(audit_key)).returncode == 0
    db = str(tmp_path / "sightings.sqlite")
    done = cli("console", "--db", db, "--audit-key", str(audit_key), "--key-chain", str(loose), "--port", "1")
    assert done.returncode != 0 and "can be read by other users" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "edge.cli", *args], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
