"""Key epochs on the unit, part by part (in this process, no vision): `keygen --epoch`, check-config and status
with a chain file, when edge.unit.keys.UnitKeys moves its file (and when not), and re-stamped events re-keyed
into their epoch before the file moves past their key."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import numpy as np
import pytest

from edge.core import events, facehash, keychain
from edge.core.errors import KeyFileError
from edge.unit.keys import GRACE_S, RETRY_S, UnitKeys
from edge.unit.outbox import Outbox

DAY = 86_400.0
QUALITY = {"size": 120, "frontalness": 0.9, "sharpness": 80.0}
CLI = [sys.executable, "-m", "edge.cli"]
MODEL = facehash.load_scheme()
FACES = np.asarray(MODEL["mean"]) + 0.45 * np.random.default_rng(7).standard_normal((3, 128)) / np.sqrt(128)
FACES /= np.linalg.norm(FACES, axis=1, keepdims=True)  # unit vectors in the cone real embeddings live in
NOON = keychain.ORIGIN + 20_000 * DAY + DAY / 2  # noon of a day of epoch 20000 of a daily chain


def chain_at(tmp_path, when: float = NOON, length: str = "1d") -> tuple[keychain.Chain, UnitKeys]:
    made = keychain.write_new(tmp_path / "unit.chain", length, when)
    return made, UnitKeys(tmp_path / "unit.chain", "fh2", 1024)


def event_at(hasher, started: float, clock: str = "unsynchronized") -> dict:
    return events.validate(
        {
            "schema_version": 3,
            "event_id": str(uuid.uuid4()),
            "site": "s1",
            "checkpoint": "door",
            "device": "d1",
            "trigger": "pir",
            "started_at": events.utc(started),
            "ended_at": events.utc(started + 1),
            "clock": clock,
            "frames": 3,
            "faces": len(FACES),
            "persons": [{"facehash": str(hasher.hash(x)), "frames": 2, "quality": QUALITY} for x in FACES],
            "model": "dlib_resnet_v1_int8@b5208826d4c0",
            "key_id": hasher.key.id,
            "scheme": "fh2",
            "software": "traceon-edge 0.1.0",
        }
    )


def stored(box: Outbox) -> list[dict]:
    return [json.loads(body) for _, body in box.oldest_few(100)]


# --- keygen, check-config, status ---


def test_keygen_epoch_writes_a_chain_and_says_its_epoch_key_id_and_to_copy_it_now(tmp_path):
    path = tmp_path / "deployment.chain"
    made = subprocess.run([*CLI, "keygen", "--epoch", "7d", str(path)], capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    chain = keychain.load(path)
    assert chain.length == "7d" and os.stat(path).st_mode & 0o777 == 0o600
    assert f"holds the key of {chain.name()}, key id {chain.key.id}" in made.stdout
    assert "every unit and to the tracer" in made.stdout and "now" in made.stdout
    again = subprocess.run([*CLI, "keygen", "--epoch", "1d", str(path)], capture_output=True, text=True)
    assert again.returncode != 0 and "already exists" in again.stderr and "Traceback" not in again.stderr
    assert keychain.load(path) == chain  # not overwritten
    plain = subprocess.run([*CLI, "keygen", str(tmp_path / "plain.key")], capture_output=True, text=True)
    assert plain.returncode == 0 and not keychain.load(tmp_path / "plain.key").moves


def test_check_config_takes_a_chain_file_and_refuses_one_others_can_read(tmp_path):
    from support.unit_config import config_text

    (tmp_path / "images").mkdir()
    keychain.write_new(tmp_path / "unit.key", "1d", NOON)
    config = tmp_path / "unit.yaml"
    config.write_text(config_text(tmp_path))
    ok = subprocess.run([*CLI, "check-config", str(config)], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    (tmp_path / "unit.key").chmod(0o644)
    loose = subprocess.run([*CLI, "check-config", str(config)], capture_output=True, text=True)
    assert loose.returncode == 78 and "facehash.key_file" in loose.stderr and "Traceback" not in loose.stderr


def test_status_shows_the_epoch_the_key_file_holds(tmp_path):
    from support.unit_config import config_text

    from edge.field import status

    (tmp_path / "images").mkdir()
    made = keychain.write_new(tmp_path / "unit.key", "1d", NOON)
    config = tmp_path / "unit.yaml"
    config.write_text(config_text(tmp_path))
    report = status.gather(config)
    assert (report["key_id"], report["key_epoch"], report["epoch_length"]) == (made.key.id, made.name(), "1d")
    shown = status.render(report)
    assert f"key id {made.key.id}" in shown and f"epoch {made.name()} (a key chain of 1d epochs" in shown


def test_health_reports_the_epoch_and_old_reports_without_it_stay_valid():
    from support.health import good_health

    assert events.problem(good_health(), "health") is None  # a unit older than key chains
    for epoch, length in (("2026-12-04", "1d"), ("week of 2026-11-30", "7d"), ("fixed key", None)):
        assert events.problem(good_health(key_epoch=epoch, epoch_length=length), "health") is None
    assert events.problem(good_health(key_epoch="yesterday", epoch_length="1d"), "health") is not None


# --- when the file moves ---


def test_a_synchronised_burst_of_a_later_epoch_moves_the_file_first_and_an_earlier_one_gets_the_files_key(tmp_path):
    made, keys = chain_at(tmp_path)
    e = made.epoch
    assert keys.for_burst(NOON + 3 * DAY, synchronized=False).key == made.key  # no clock: the file's key
    assert keychain.load(keys.path).epoch == e
    later = keys.for_burst(made.start_of(e + 2).timestamp() + 1, synchronized=True)  # two epochs on: two steps
    assert later.key == made.key_at(e + 2) and keychain.load(keys.path) == made.forward(e + 2)
    race = keys.for_burst(made.start_of(e + 2).timestamp() - 1, synchronized=True)  # just before the boundary
    assert race.key == made.key_at(e + 2) and keychain.load(keys.path).epoch == e + 2  # the file's: never back
    assert keys.health() == {"key_id": made.key_at(e + 2).id, "key_epoch": made.name(e + 2), "epoch_length": "1d"}
    assert list(keys._hashers) == [made.key_at(e + 2).id]  # hashers of keys no longer held are let go


def test_without_bursts_the_file_moves_a_grace_time_after_the_boundary_and_never_back(tmp_path):
    made, keys = chain_at(tmp_path)
    boundary = made.start_of(made.epoch + 1).timestamp()
    keys.catch_up(boundary + GRACE_S - 1, synchronized=True)  # a burst of the old epoch may still be hashed
    assert keychain.load(keys.path).epoch == made.epoch
    keys.catch_up(boundary + 30 * DAY, synchronized=False)  # an unsynchronised clock moves nothing
    assert keychain.load(keys.path).epoch == made.epoch
    keys.catch_up(boundary + 30 * DAY, synchronized=True)  # off for a month: caught up at once
    assert keychain.load(keys.path) == made.forward(made.epoch + 30) == keys.chain
    keys.catch_up(boundary, synchronized=True)  # a clock set back
    keys.for_burst(boundary, synchronized=True)
    assert keychain.load(keys.path).epoch == made.epoch + 30


def test_a_file_that_cannot_be_replaced_keeps_its_key_and_is_tried_again_later(tmp_path, caplog):
    made, keys = chain_at(tmp_path)
    real = tmp_path / "elsewhere.chain"
    keys.path.rename(real)
    keys.path.symlink_to(real)  # move_forward refuses to write through a link (as it would a read-only folder)
    later = made.start_of(made.epoch + 1).timestamp() + 1
    assert keys.for_burst(later, synchronized=True).key == made.key  # hashed all the same, with the key it holds
    assert "events keep the key of" in caplog.text and keychain.load(real) == made
    keys.path.unlink()
    real.rename(keys.path)
    keys.for_burst(later, synchronized=True)
    assert keychain.load(keys.path) == made  # not at once: at most once a minute
    keys._failed_at -= RETRY_S
    assert keys.for_burst(later, synchronized=True).key == made.key_at(made.epoch + 1)


def test_a_plain_key_file_never_moves(tmp_path):
    facehash.write_key_file(tmp_path / "unit.key")
    before = (tmp_path / "unit.key").read_bytes()
    keys = UnitKeys(tmp_path / "unit.key", "fh2", 1024)
    keys.catch_up(NOON + 400 * DAY, synchronized=True)
    keys.for_burst(NOON + 800 * DAY, synchronized=True)
    assert (tmp_path / "unit.key").read_bytes() == before
    assert keys.health()["key_epoch"] == "fixed key" and keys.health()["epoch_length"] is None


def test_a_key_file_others_can_read_is_refused(tmp_path):
    keychain.write_new(tmp_path / "unit.chain", "1d", NOON)
    (tmp_path / "unit.chain").chmod(0o640)
    with pytest.raises(KeyFileError, match=r"0600|mode"):
        UnitKeys(tmp_path / "unit.chain", "fh2", 1024)


# --- re-stamped events ---


def restamping(tmp_path, keys: UnitKeys, sync_wall: float) -> Outbox:
    """An outbox wired to `keys` as edge.unit.runtime wires them: each move re-stamps what waits first."""
    box = Outbox(tmp_path / "outbox.sqlite", 100, 10**7)
    box.rekey_restamped(keys.rekey_restamped)

    def before_move() -> bool:
        box.restamp(wall=sync_wall, mono=100.0, boot="boot-1")
        return True

    keys.before_move = before_move
    return box


def test_events_restamped_into_a_later_epoch_are_rekeyed_before_the_file_moves_past_their_key(tmp_path):
    made, keys = chain_at(tmp_path)
    e = made.epoch
    sync = made.start_of(e + 1).timestamp() + 600  # the clock, once synchronised: the next epoch
    box = restamping(tmp_path, keys, sync)
    with keys.lock:
        for mono in (40.0, 90.0):  # 60 s and 10 s before the sync: re-stamped into epoch e+1
            box.put(event_at(keys.for_burst(NOON, synchronized=False), NOON), (mono, "boot-1"))
    assert {e["key_id"] for e in stored(box)} == {made.key.id}
    keys.for_burst(sync, synchronized=True)  # the first synchronised burst moves the file: re-stamp first
    assert keychain.load(keys.path).epoch == e + 1
    waiting, target = stored(box), made.key_at(e + 1)
    assert [(w["clock"], w["key_id"]) for w in waiting] == [("restamped", target.id)] * 2
    native = [str(facehash_of(target, x)) for x in FACES]
    for event in waiting:
        assert [p["facehash"].split(":")[1] for p in event["persons"]] == [target.id] * len(FACES)
        gaps = [facehash.distance(p["facehash"], n) for p, n in zip(event["persons"], native, strict=True)]
        assert max(gaps) <= 20, gaps  # the same faces under the epoch's key (same-person distances are ~200)
        assert events.problem(event) is None
    assert keys.rekeyed == 2
    box.close()


def test_events_restamped_into_the_files_own_epoch_keep_their_codes(tmp_path):
    made, keys = chain_at(tmp_path)
    box = restamping(tmp_path, keys, NOON + 600)
    with keys.lock:
        made_event = event_at(keys.for_burst(NOON - 5 * DAY, synchronized=False), NOON - 5 * DAY)
        box.put(made_event, (90.0, "boot-1"))
        assert box.restamp(wall=NOON + 600, mono=100.0, boot="boot-1") == 1
    (waiting,) = stored(box)
    assert waiting["clock"] == "restamped" and waiting["persons"] == made_event["persons"]
    assert waiting["key_id"] == made.key.id and keys.rekeyed == 0
    box.close()


def facehash_of(key, x):
    from edge.core import schemes

    return schemes.hasher(key, MODEL, "fh2").hash(x)
