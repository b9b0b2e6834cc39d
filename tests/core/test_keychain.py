"""Key chains: one-way steps, epochs on UTC boundaries, files that move forward and keep no old key."""

import datetime
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.core import keychain
from edge.core.errors import KeyFileError
from edge.core.facehash import Key

DAY = 86_400


def utc(*parts) -> float:
    return datetime.datetime(*parts, tzinfo=datetime.UTC).timestamp()


def test_epochs_are_utc_days_and_weeks_starting_monday():
    day = keychain.Chain(Key(b"\1" * 32), "1d", 0)
    assert day.epoch_of(utc(2026, 12, 4, 23, 59, 59)) + 1 == day.epoch_of(utc(2026, 12, 5))
    assert day.name(day.epoch_of(utc(2026, 12, 4, 12))) == "2026-12-04"
    week = keychain.Chain(Key(b"\1" * 32), "7d", 0)
    monday = utc(2026, 11, 30)  # a Monday
    assert week.epoch_of(monday - 1) + 1 == week.epoch_of(monday) == week.epoch_of(monday + 7 * DAY - 1)
    assert week.name(week.epoch_of(utc(2026, 12, 4))) == "week of 2026-11-30"
    plain = keychain.Chain(Key(b"\1" * 32))
    assert plain.epoch_of(utc(2030, 1, 1)) == 0 and plain.forward(10) is plain


@settings(max_examples=30, deadline=None)
@given(start=st.integers(0, 30_000), ahead=st.integers(0, 40), then=st.integers(0, 40))
def test_forward_is_the_same_key_however_it_is_reached(start, ahead, then):
    chain = keychain.Chain(Key(bytes(range(32))), "1d", start)
    stepped = chain.forward(start + ahead).forward(start + ahead + then)
    direct = chain.forward(start + ahead + then)
    assert stepped == direct
    assert direct.key.secret == chain.key_at(start + ahead + then).secret


def test_a_windows_keys_are_each_epochs_key_and_say_what_is_gone():
    chain = keychain.Chain(Key(b"\4" * 32), "1d", 200)
    now = chain.start_of(205).timestamp() + 3600
    assert chain.window(3 * DAY, now) == (202, 205)
    assert chain.window(30 * DAY, now) == (200, 205)  # no earlier than the chain's own epoch
    assert [(e, k.secret) for e, k in chain.keys(202, 205)] == [(e, chain.key_at(e).secret) for e in range(202, 206)]
    assert chain.gone(3 * DAY, now) is None
    assert "the key of" in chain.gone(30 * DAY, now) and "is gone" in chain.gone(30 * DAY, now)
    assert keychain.Chain(Key(b"\4" * 32)).gone(30 * DAY, now) is None  # a plain key has nothing gone


def test_each_epoch_has_its_own_key_id_and_no_way_back():
    chain = keychain.Chain(Key(b"\7" * 32), "1d", 100)
    ids = [chain.key_at(e).id for e in range(100, 110)]
    assert len(set(ids)) == 10
    later = chain.forward(105)
    with pytest.raises(KeyFileError, match="is gone"):
        later.key_at(104)
    assert later.forward(101) is later  # an earlier epoch moves nothing


def test_a_chain_file_reads_back_and_junk_is_refused(tmp_path):
    chain = keychain.Chain(Key(b"\5" * 32), "7d", 2917)
    assert keychain.parse(chain.text(), tmp_path / "c") == chain
    plain = keychain.Chain(Key(b"\5" * 32))
    assert keychain.parse(plain.text(), tmp_path / "k") == plain
    for bad in ["", "epoch-length: 2d\nepoch: 1\nkey: " + "ab" * 32, chain.text().replace("epoch: 2917", "epoch: -1")]:
        with pytest.raises(KeyFileError, match="neither a traceon-edge key nor a key chain"):
            keychain.parse(bad, tmp_path / "c")


def test_write_new_is_private_and_never_overwrites(tmp_path):
    path = tmp_path / "unit.chain"
    chain = keychain.write_new(path, "1d", utc(2026, 12, 4, 9))
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert keychain.load(path) == chain and chain.name() == "2026-12-04"
    with pytest.raises(KeyFileError, match="never overwritten"):
        keychain.write_new(path, "1d", utc(2026, 12, 4, 9))
    with pytest.raises(KeyFileError, match="an epoch is 1d or 7d"):
        keychain.write_new(tmp_path / "other", "2d", 0)


def test_move_forward_overwrites_the_old_keys_bytes(tmp_path):
    path = tmp_path / "unit.chain"
    held = keychain.write_new(path, "1d", utc(2026, 12, 4))
    old_copy = tmp_path / "old-inode"
    os.link(path, old_copy)  # a second name for the old file's blocks: what a file-system scan would find
    moved = keychain.move_forward(path, held, held.epoch + 3)
    assert keychain.load(path) == moved == held.forward(held.epoch + 3)
    assert held.key.secret.hex() not in path.read_text()
    assert set(old_copy.read_bytes()) == {0}  # the old key's bytes were overwritten, not just unlinked
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    assert keychain.move_forward(path, moved, moved.epoch - 1) is moved  # never back


def test_move_forward_that_cannot_write_says_so(tmp_path):
    held = keychain.Chain(Key(b"\3" * 32), "1d", 10)
    with pytest.raises(KeyFileError, match=r"cannot move the key chain .* forward"):
        keychain.move_forward(tmp_path / "missing.chain", held, 11)
