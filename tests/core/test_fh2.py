"""FaceHash scheme fh2: its codes keep the embeddings' distances, its text form refuses what is not a code,
different keys unlink, and the public prefilter keeps every row within a distance."""

from __future__ import annotations

import base64

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.core import facehash, fh2, schemes
from edge.core.facehash import FaceHashError, Key

SCHEME = facehash.load_scheme()
MEAN = np.asarray(SCHEME["mean"])
keys = st.binary(min_size=32, max_size=32).map(Key)


def faces_near_the_mean(seed: int, n: int, spread: float = 0.45) -> np.ndarray:
    """Unit vectors in the narrow cone real embeddings live in (about 0.4 from the population mean)."""
    rng = np.random.default_rng(seed)
    v = MEAN + spread * rng.standard_normal((n, 128)) / np.sqrt(128)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@given(keys, st.integers(0, 2**32 - 1))
@settings(max_examples=25, deadline=None)
def test_the_code_distance_is_the_embedding_distance_up_to_rounding(key, seed):
    x = faces_near_the_mean(seed, 12)
    codes = fh2.Hasher(key, SCHEME).codes(x)
    scale = SCHEME["fh2"]["scale"]
    for i in range(1, len(x)):
        measured = fh2.distances(codes[i : i + 1], [codes[0].tobytes()])[0]
        # rounding each of 128 coordinates moves a distance by at most sqrt(128) · 0.5 · 2 units
        assert abs(measured - scale * np.linalg.norm(x[i] - x[0])) <= np.sqrt(128) + 1


@given(keys, st.integers(0, 2**32 - 1))
@settings(max_examples=25, deadline=None)
def test_text_form_round_trips_and_compares(key, seed):
    hasher = schemes.hasher(key, SCHEME, "fh2")
    a, b = (hasher.hash(v) for v in faces_near_the_mean(seed, 2))
    text = str(a)
    assert text.startswith(f"fh2:{key.id}:") and len(text) == 218
    back = facehash.parse(text)
    assert back.scheme == "fh2" and back.packed == a.packed and str(back) == text
    assert facehash.distance(a, back) == 0
    assert facehash.distance(a, b) == facehash.distance(str(b), str(a)) > 0


def test_a_new_key_gives_an_unrelated_code_and_fh1_and_fh2_do_not_compare():
    x = faces_near_the_mean(3, 200)
    one, other = (fh2.Hasher(Key(bytes([k]) * 32), SCHEME).codes(x).astype(float) for k in (1, 2))
    same_key = np.corrcoef(one[:, 0], fh2.Hasher(Key(b"\x01" * 32), SCHEME).codes(x)[:, 0])[0, 1]
    across = [abs(np.corrcoef(one[:, j], other[:, j])[0, 1]) for j in range(128)]
    assert same_key == pytest.approx(1.0)
    assert np.mean(across) < 0.12  # coordinate by coordinate, two keys' codes of the same faces are unrelated
    key = Key(b"\x01" * 32)
    with pytest.raises(FaceHashError, match="different schemes"):
        facehash.distance(schemes.hasher(key, SCHEME, "fh1").hash(x[0]), schemes.hasher(key, SCHEME, "fh2").hash(x[0]))
    with pytest.raises(FaceHashError, match="different keys"):
        facehash.distance(fh2.Hasher(key, SCHEME).hash(x[0]), fh2.Hasher(Key(b"\x02" * 32), SCHEME).hash(x[0]))


def _text(raw: bytes) -> str:
    return "fh2:abcdefgh:" + base64.b32encode(raw).decode().rstrip("=").lower()


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (bytes(127), "127 bytes long, not 128"),
        (bytes(129), "129 bytes long, not 128"),
        (bytes(127) + b"\x80", "out of range"),
    ],
)
def test_hostile_codes_are_refused_with_one_line(raw, why):
    with pytest.raises(FaceHashError, match=why) as refused:
        facehash.parse(_text(raw))
    assert "\n" not in str(refused.value) and str(refused.value).startswith("not a FaceHash")


def test_a_code_of_the_full_range_is_read():
    raw = bytes(np.array([127, -127] * 64, np.int8).tobytes())
    assert facehash.parse(_text(raw)).packed == raw


def test_unknown_scheme_and_other_lengths_are_refused():
    key = Key(bytes(32))
    with pytest.raises(FaceHashError, match="unknown FaceHash scheme"):
        schemes.hasher(key, SCHEME, "fh3")
    with pytest.raises(FaceHashError, match="1024 bits long"):
        schemes.hasher(key, SCHEME, "fh2", bits=512)


@given(keys, st.integers(0, 2**32 - 1), st.floats(0.05, 0.5))
@settings(max_examples=30, deadline=None)
def test_the_prefilter_keeps_every_code_within_the_distance(key, seed, spread):
    """What PostgreSQL keeps in the engine must hold every row the exact distance accepts."""
    x = faces_near_the_mean(seed, 64, spread)
    codes = fh2.Hasher(key, SCHEME).codes(x)
    exact = fh2.distances(codes, [codes[0].tobytes()])
    bits = np.unpackbits(fh2.filter_bits(codes, SCHEME), axis=1)
    filtered = np.count_nonzero(bits != bits[0], axis=1)
    for limit in (250, 275, 302, 338, 380):
        within = exact <= limit
        assert (filtered[within] <= fh2.filter_limit(limit, SCHEME)).all()
