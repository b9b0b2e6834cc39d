"""FaceHash: properties of the code and its text form, and the handling of keys."""

from __future__ import annotations

import base64
import os
import stat

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.core import facehash
from edge.core.facehash import FaceHash, FaceHasher, FaceHashError, Key, KeyFileError

SCHEME = facehash.load_scheme()
LENGTHS = sorted(int(b) for b in SCHEME["thresholds"])

keys = st.binary(min_size=32, max_size=32).map(Key)


@st.composite
def codes(draw, key_id: str | None = None, length: int | None = None):
    length = length or draw(st.sampled_from(LENGTHS))
    bits = draw(st.lists(st.booleans(), min_size=length, max_size=length))
    return FaceHash(key_id or draw(keys).id, np.array(bits, dtype=bool))


@st.composite
def three_codes(draw):
    key_id, length = draw(keys).id, draw(st.sampled_from(LENGTHS))
    return [draw(codes(key_id, length)) for _ in range(3)]


def unit_vectors(seed: int, n: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal((n, 128))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@given(three_codes())
def test_distance_is_a_metric_on_codes(trio):
    a, b, c = trio
    d = facehash.distance
    assert d(a, a) == 0.0
    assert d(a, b) == d(b, a)
    assert 0.0 <= d(a, b) <= 1.0
    assert d(a, c) <= d(a, b) + d(b, c) + 1e-12
    assert (d(a, b) == 0.0) == bool(np.array_equal(a.bits, b.bits))


@given(codes())
def test_encode_and_parse_round_trip(code):
    text = facehash.encode(code)
    back = facehash.parse(text)
    assert text.startswith(f"fh1:{code.key_id}:")
    assert back.key_id == code.key_id
    assert np.array_equal(back.bits, code.bits)
    assert facehash.encode(back) == text


@given(keys, keys, st.sampled_from(LENGTHS), st.integers(0, 2**32 - 1))
@settings(max_examples=25, deadline=None)
def test_codes_of_one_key_never_compare_as_another_keys(k1, k2, bits, seed):
    if k1.secret == k2.secret:
        return
    v = unit_vectors(seed, 1)[0]
    a, b = FaceHasher(k1, SCHEME, bits).hash(v), FaceHasher(k2, SCHEME, bits).hash(v)
    assert a.key_id != b.key_id
    assert facehash.parse(str(a)).key_id == k1.id
    with pytest.raises(FaceHashError, match="different keys"):
        facehash.distance(str(a), str(b))


@given(keys, st.integers(0, 2**32 - 1))
@settings(max_examples=25, deadline=None)
def test_nothing_in_the_text_form_reveals_the_key(key, seed):
    text = str(FaceHasher(key, SCHEME).hash(unit_vectors(seed, 1)[0])).lower()
    secret = key.secret
    forms = [
        secret.hex(),
        base64.b32encode(secret).decode().lower().rstrip("="),
        base64.b64encode(secret).decode().lower(),
        base64.urlsafe_b64encode(secret).decode().lower(),
    ]
    for form in forms:
        for start in range(0, len(form) - 12):
            assert form[start : start + 12] not in text


def test_lengths_and_strings_that_are_not_facehashes_are_refused():
    key = Key(bytes(range(32)))
    a = FaceHasher(key, SCHEME, 1024).hash(unit_vectors(1, 1)[0])
    b = FaceHasher(key, SCHEME, 512).hash(unit_vectors(1, 1)[0])
    with pytest.raises(FaceHashError, match="different lengths"):
        facehash.distance(a, b)
    for bad in ("", "fh2:abcdefgh:aaaa", "fh1:ABC:aaaa", "fh1:abcdefgh:a1b", "md5:0cc175b9c0f1b6a8", "fh1:abcdefgh:"):
        with pytest.raises(FaceHashError, match="not a FaceHash"):
            facehash.parse(bad)
    with pytest.raises(FaceHashError, match="bits long"):
        FaceHasher(key, SCHEME, 100)


def test_the_same_key_gives_the_same_code_and_a_new_key_an_unrelated_one():
    v = unit_vectors(7, 50)
    k1, k2 = Key(b"\x01" * 32), Key(b"\x02" * 32)
    one, again, other = (FaceHasher(k, SCHEME).codes(v) for k in (k1, k1, k2))
    assert np.array_equal(one, again)
    across = np.mean(one != other, axis=1)
    assert abs(float(np.mean(across)) - 0.5) < 0.1  # unrelated codes disagree on about half their bits


def test_fh1_codes_are_frozen():
    """Units in the field must keep producing the same code for the same key and embedding: a change
    to the scheme, its statistics or the key derivation needs a new version, not a silent change."""
    key = Key(bytes(range(32)))
    v = np.sin(np.arange(128) * 0.7) * 0.1 + 0.05  # a fixed vector that needs no random generator
    code = str(FaceHasher(key, SCHEME).hash(v / np.linalg.norm(v)))
    assert key.id == "v7j6orc7"
    assert code.startswith("fh1:v7j6orc7:")
    assert len(code) == len("fh1:v7j6orc7:") + 205
    assert code[13:45] == FROZEN_PREFIX


FROZEN_PREFIX = "adamb74i7d7pbyaa74hqqd7q74hibyhq"  # measured once, when fh1 was calibrated


# --- key files --------------------------------------------------------------------------------------


def test_keygen_writes_a_private_key_and_never_overwrites(tmp_path):
    path = tmp_path / "unit.key"
    key = facehash.write_key_file(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert facehash.load_key(path).secret == key.secret
    with pytest.raises(KeyFileError, match="already exists; a key is never overwritten"):
        facehash.write_key_file(path)
    assert facehash.load_key(path).secret == key.secret


@given(st.sampled_from([0o644, 0o640, 0o604, 0o660, 0o606, 0o666, 0o700 | 0o004, 0o620]))
@settings(max_examples=10, deadline=None)
def test_a_key_readable_by_others_is_refused(tmp_path_factory, mode):
    path = tmp_path_factory.mktemp("k") / "unit.key"
    facehash.write_key_file(path)
    os.chmod(path, mode)
    with pytest.raises(KeyFileError, match=rf"can be read by other users \(mode {mode:04o}\).*chmod 600"):
        facehash.load_key(path)


def test_missing_and_malformed_keys_are_refused_with_a_fix(tmp_path):
    with pytest.raises(KeyFileError, match="does not exist; create one with `traceon-edge keygen"):
        facehash.load_key(tmp_path / "none.key")
    bad = tmp_path / "bad.key"
    bad.write_text("not a key\n")
    bad.chmod(0o600)
    with pytest.raises(KeyFileError, match="not a traceon-edge key"):
        facehash.load_key(bad)
    with pytest.raises(KeyFileError, match="not a regular file"):
        facehash.load_key(tmp_path)
