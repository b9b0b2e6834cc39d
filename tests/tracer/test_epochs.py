"""A trace across key epochs (issue 22, Must show 3 and 4): a person sighted in two epochs of a daily chain, traced
from one photo with `embed --key-chain`; and erasure: once retention has moved the tracer's chain past those
epochs, no command makes their FaceHashes again and a copy of the store taken before matches nothing.

The person is the trace demo's alex_lacamoire (sighted by his 2nd photo at north/door in epoch e and his 3rd at
south/door in e+1, traced from his 1st); lin_manuel_miranda is beside him each time (a contact of each visit)."""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import sys
import time

import pytest
from support import schemes
from support.collector import Collector
from support.data import ROOT, need_data

from edge.core import events, facehash, fh2, keychain
from edge.core import schemes as core_schemes
from edge.core.facehash import Key
from edge.tracer import operating_point, store

PERSON, CONTACT = "alex_lacamoire", "lin_manuel_miranda"


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "edge.cli", *args], capture_output=True, text=True, cwd=ROOT, timeout=120
    )


@pytest.fixture
def chain(tmp_path) -> tuple[keychain.Chain, object]:
    """The tracer's daily chain file, holding epoch e = three days ago (UTC), mode 0600."""
    start = keychain.Chain(Key(secrets.token_bytes(32)), "1d")
    held = keychain.Chain(start.key, "1d", start.epoch_of(time.time()) - 3)
    path = tmp_path / "tracer.chain"
    path.write_text(held.text())
    path.chmod(0o600)
    return held, path


def sightings(chain: keychain.Chain, embeddings, db_url: str) -> list[dict]:
    """The person at north/door in epoch e and at south/door in e+1 (noon UTC), each time with the contact a
    minute later; every FaceHash made by the unit's own hasher under that epoch's key, stored as a collector does."""
    made = []
    for epoch, door, photo in ((chain.epoch, "north-door", "2.jpg"), (chain.epoch + 1, "south-door", "3.jpg")):
        key = chain.key_at(epoch)
        hasher = core_schemes.hasher(key, facehash.load_scheme(), "fh2")
        noon = chain.start_of(epoch).timestamp() + 12 * 3600
        for offset, face in ((0, f"{PERSON}/{photo}"), (60, f"{CONTACT}/1.png")):
            at = noon + offset
            made.append(
                events.validate(
                    schemes.body(
                        [str(hasher.hash(embeddings[face]))],
                        door,
                        0,
                        "fh2",
                        key_id=key.id,
                        started_at=events.utc(at),
                        ended_at=events.utc(at + 1),
                    )
                )
            )
    db = store.open_store(db_url)
    db.add([schemes.checked(m) for m in made])
    db.close()
    return made


def embed(path, since: str = "14d") -> dict:
    photo = need_data("faces", PERSON, "1.png")
    done = cli("embed", "--key-chain", str(path), "--one-person", str(photo), "--since", since)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def trace(db_url: str, line: dict, *extra: str) -> subprocess.CompletedProcess:
    codes = [e["facehash"] for e in line["facehashes"]]
    return cli("trace", *codes, "--db", db_url, "--since", "14d", *extra)


def test_one_photo_traces_a_person_across_two_epochs_with_the_budget_split(tmp_path, chain, embeddings):
    held, path = chain
    db_url = str(tmp_path / "sightings.sqlite")
    made = sightings(held, embeddings, db_url)
    line = embed(path)
    # one FaceHash per epoch from the chain's epoch to today's, each under that epoch's key
    assert [e["key_id"] for e in line["facehashes"]] == [held.key_at(held.epoch + n).id for n in range(4)]
    assert [e["epoch"] for e in line["facehashes"]] == [held.name(held.epoch + n) for n in range(4)]
    assert line["gone"] is not None and "is gone" in line["gone"]  # 14 days back is before the chain's epoch
    assert line["trace"].startswith("traceon-edge trace " + " ".join(e["facehash"] for e in line["facehashes"]))

    report = trace(db_url, line)
    assert report.returncode == 0, report.stderr
    header = report.stdout.split("\n\n")[0]
    print(f"$ {line['trace']}\n{header}")
    e0, e1 = held.key_at(held.epoch).id, held.key_at(held.epoch + 1).id
    assert f"key {e0}: 2 rows seen {events.utc(held.start_of(held.epoch).timestamp() + 12 * 3600)[:10]}" in header
    assert f"key {e1}: 2 rows seen" in header
    assert "no rows of this query stored (a quiet epoch" in header  # e+2 and e+3: no unit sent anything
    assert "Searched 4 person rows of this scheme" in header and "in 4 epochs" in header

    answer = json.loads(trace(db_url, line, "--format", "json").stdout)
    found = {(s["checkpoint"], s["key_id"]) for s in answer["sightings"]}
    assert found == {("north-door", e0), ("south-door", e1)}  # both epochs' sightings, each with its own code
    assert {s["event_id"] for s in answer["sightings"]} == {made[0]["event_id"], made[2]["event_id"]}
    epochs = {e["key_id"]: e for e in answer["epochs"]}
    assert epochs[e0]["rows_searched"] == epochs[e1]["rows_searched"] == 2
    # one FAR per row for all epochs, chosen from the 4 rows searched in all: the whole trace keeps --max-false 1
    assert epochs[e0]["far_per_row"] == epochs[e1]["far_per_row"] <= 1 / 4
    assert answer["operating_point"]["rows_searched"] == 4
    total = sum(e["expected_false_sightings"] for e in answer["epochs"])
    assert total == pytest.approx(answer["operating_point"]["expected_false_sightings"]) and total <= 1.0
    # each visit's contacts are rows of its own epoch: the contact beside him each time
    assert [(v["key_id"], len(v["contacts"])) for v in answer["visits"]] == [(e0, 1), (e1, 1)]
    # a tight budget: the FAR per row is the one for all 4 rows, not for each epoch's 2 (which would double it)
    tight = json.loads(trace(db_url, line, "--format", "json", "--max-false", "0.01").stdout)
    whole = operating_point.choose(fh2.BITS, 4, max_false=0.01, scheme="fh2")
    assert whole.far != operating_point.choose(fh2.BITS, 2, max_false=0.01, scheme="fh2").far
    assert [e["far_per_row"] for e in tight["epochs"][:2]] == [whole.far, whole.far]
    assert sum(e["expected_false_sightings"] for e in tight["epochs"]) <= 0.01
    csv_text = trace(db_url, line, "--format", "csv").stdout
    assert sum(row.startswith("epoch,") for row in csv_text.splitlines()) == 4


def test_a_contacts_facehash_is_traced_over_the_whole_window_by_re_keying_it(tmp_path, chain, embeddings):
    held, path = chain
    db_url = str(tmp_path / "sightings.sqlite")
    made = sightings(held, embeddings, db_url)
    first = json.loads(trace(db_url, embed(path), "--format", "json").stdout)
    contact = first["visits"][0]["contacts"][0]["facehash"]  # beside him at north/door, a FaceHash of epoch e
    assert contact == made[1]["persons"][0]["facehash"]
    e0, e1 = held.key_at(held.epoch).id, held.key_at(held.epoch + 1).id

    alone = json.loads(cli("trace", contact, "--db", db_url, "--since", "14d", "--format", "json").stdout)
    assert [s["checkpoint"] for s in alone["sightings"]] == ["north-door"]  # its own epoch only

    done = cli("trace", contact, "--db", db_url, "--since", "14d", "--key-chain", str(path))
    assert done.returncode == 0, done.stderr
    print(f"$ traceon-edge trace <contact's FaceHash of key {e0}> --key-chain tracer.chain …\n{done.stdout}")
    assert f"key {e1}: 2 rows seen" in done.stdout and f"(FaceHash re-keyed from key {e0})" in done.stdout
    assert f"Trace of 4 FaceHashes of one person, 3 of them re-keyed from key {e0} (fh2" in done.stdout
    wide = json.loads(
        cli("trace", contact, "--db", db_url, "--since", "14d", "--key-chain", str(path), "--format", "json").stdout
    )
    assert {(s["checkpoint"], s["key_id"]) for s in wide["sightings"]} == {("north-door", e0), ("south-door", e1)}
    assert {s["event_id"] for s in wide["sightings"]} == {made[1]["event_id"], made[3]["event_id"]}
    rekeyed = {e["key_id"]: e["rekeyed_from"] for e in wide["epochs"]}
    assert rekeyed[e0] is None and rekeyed[e1] == e0 and len(rekeyed) == 4  # e … e+3, today's included
    assert wide["operating_point"]["rows_searched"] == 4

    other = keychain.Chain(Key(secrets.token_bytes(32)), "1d", held.epoch)  # another deployment's chain
    other_path = tmp_path / "other.chain"
    other_path.write_text(other.text())
    other_path.chmod(0o600)
    refused = cli("trace", contact, "--db", db_url, "--key-chain", str(other_path))
    assert refused.returncode != 0 and "which is no epoch this key chain holds" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_retention_moves_the_chain_past_an_epoch_and_nothing_can_test_it_again(tmp_path, chain, embeddings, broker):
    held, path = chain
    db_url = str(tmp_path / "sightings.sqlite")
    sightings(held, embeddings, db_url)
    backup = tmp_path / "backup.sqlite"
    shutil.copy(db_url, backup)  # a copy of the store taken before retention ran
    before = embed(path, "3d")
    assert before["gone"] is None and before["facehashes"][0]["key_id"] == held.key_at(held.epoch).id

    collector = Collector(broker.port, db_url, "collector-1", "--retention", "1d", "--key-chain", str(path))
    moved = collector.wait_for("moved the key chain")
    collector.stop()
    print(moved)
    ahead = keychain.load(path)
    assert ahead.epoch == held.epoch + 2 and f"to {held.name(held.epoch + 2)}" in moved
    assert f"sightings of {held.name()} … {held.name(held.epoch + 1)} can no longer be tested" in moved
    assert held.key.secret.hex() not in path.read_text()

    after = embed(path, "3d")  # the window starts in epoch e (3 days ago): its key is gone, and said
    print(json.dumps(after["gone"]))
    assert f"the key of {held.name()} is gone" in after["gone"]
    made = {e["key_id"] for e in after["facehashes"]}
    assert made.isdisjoint({held.key_at(held.epoch).id, held.key_at(held.epoch + 1).id})

    everything = embed(path, "14d")  # all the project can make now, over the longest window
    result = trace(str(backup), everything)
    print(f"$ traceon-edge trace <{len(everything['facehashes'])} FaceHashes> --db backup.sqlite\n{result.stderr}")
    assert result.returncode != 0 and "holds no fh2 sightings under any of the" in result.stderr
    assert "Traceback" not in result.stderr
    rows = store.open_store(str(backup), create=False, read_only=True)
    assert rows.counts()[1] == 4  # the rows are still in the copy: untestable, not deleted
    rows.close()


def test_a_chain_that_cannot_move_stops_no_collecting_and_says_what_waits(tmp_path, chain, broker):
    held, path = chain
    (tmp_path / f".{path.name}.new").mkdir()  # where the moved chain would be written: the move fails
    db_url = str(tmp_path / "sightings.sqlite")
    collector = Collector(broker.port, db_url, "collector-1", "--retention", "1d", "--key-chain", str(path))
    said = collector.wait_for("stay testable from a photo until the chain moves")
    assert f"cannot move the key chain {path} forward" in said
    collector.wait_for("storing into")
    assert collector.process.poll() is None  # still collecting
    assert "Traceback" not in collector.stop() and collector.process.returncode == 0
    assert keychain.load(path) == held  # untouched, whole


def test_forget_keys_moves_the_chain_by_hand_and_says_what_it_erased(chain):
    held, path = chain
    done = cli("forget-keys", "--key-chain", str(path), "--retention", "2d")
    assert done.returncode == 0, done.stderr
    print(done.stdout)
    assert keychain.load(path).epoch == held.epoch + 1 and f"the sightings of {held.name()} can no" in done.stdout
    again = cli("forget-keys", "--key-chain", str(path), "--retention", "2d")
    assert "nothing to move" in again.stdout and keychain.load(path).epoch == held.epoch + 1
    back = cli("forget-keys", "--key-chain", str(path), "--retention", "21d")  # a longer retention moves nothing
    assert "nothing to move" in back.stdout and keychain.load(path).epoch == held.epoch + 1


def test_a_tracer_chain_that_is_a_plain_key_or_readable_by_others_is_refused_at_start(tmp_path, broker):
    plain = tmp_path / "plain.key"
    plain.write_text(f"{facehash.KEY_HEADER}\n{secrets.token_hex(32)}\n")
    plain.chmod(0o600)
    loose = tmp_path / "loose.chain"
    loose.write_text(keychain.Chain(Key(secrets.token_bytes(32)), "1d", 20000).text())
    loose.chmod(0o644)
    db = str(tmp_path / "sightings.sqlite")
    for chain_file, said in (
        (plain, "is a plain key, not a key chain"),
        (loose, "can be read by other users"),
        (tmp_path / "none", "keygen"),
    ):
        for command in (
            ["collect", "--broker", f"127.0.0.1:{broker.port}", "--db", db, "--key-chain", str(chain_file)],
            ["forget-keys", "--key-chain", str(chain_file)],
        ):
            done = cli(*command)
            assert done.returncode != 0 and said in done.stderr, (command, done.stderr)
            assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "sightings.sqlite").exists()  # nothing was run
