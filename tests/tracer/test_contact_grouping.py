"""Contact grouping (grouping.py, issue 19): the rule the trace always had, a row joins the first group
whose first row is within the link, kept on both of its paths: every pair compared (few distinct codes)
and hashed candidates (many)."""

from __future__ import annotations

import numpy as np
import pytest
from support.rows import BITS, flipped, random_codes

from edge.tracer import grouping, operating_point, trace

LINK = operating_point.curve(BITS, 1).distance_at(trace.CONTACT_LINK_FAR)


def reference(codes: list[bytes], link: int) -> list[int]:
    """The rule, row by row (trace._contacts before issue 19)."""
    leaders: list[bytes] = []
    out = []
    for code in codes:
        near = [i for i, lead in enumerate(leaders) if trace.bits_apart(lead, code) <= link]
        if near:
            out.append(near[0])
        else:
            out.append(len(leaders))
            leaders.append(code)
    return out


@pytest.fixture(params=["every pair", "hashed"])
def path(request, monkeypatch):
    if request.param == "hashed":
        monkeypatch.setattr(grouping, "EXACT", 0)
    return request.param


def as_array(codes: list[bytes]) -> np.ndarray:
    return np.frombuffer(b"".join(codes), np.uint8).reshape(len(codes), -1)


def test_rows_exactly_the_link_from_a_leader_join_it_and_one_bit_more_do_not(path):
    rng = np.random.default_rng(5)
    leader, other = random_codes(rng, 2)
    codes = [leader, flipped(leader, LINK, rng), flipped(leader, LINK + 1, rng), other, flipped(other, 3, rng)]
    codes += [leader]  # the same code again: the same group
    assert grouping.groups(as_array(codes), LINK).tolist() == [0, 0, 1, 2, 2, 0]


def test_a_row_near_two_leaders_joins_the_first(path):
    rng = np.random.default_rng(6)
    a = random_codes(rng, 1)[0]
    b = flipped(a, LINK + 20, rng)  # its own leader: beyond the link from a
    between = bytearray(a)  # within the link of both a and b: half of their differing bits
    diff = np.flatnonzero(np.unpackbits(np.frombuffer(bytes(x ^ y for x, y in zip(a, b, strict=True)), np.uint8)))
    for bit in diff[: len(diff) // 2]:
        between[bit // 8] ^= 0x80 >> (bit % 8)
    codes = [a, b, bytes(between)]
    assert grouping.groups(as_array(codes), LINK).tolist() == reference(codes, LINK) == [0, 1, 0]


def test_people_among_junk_are_grouped_as_the_rule_groups_them(path):
    """1,000 random codes and five people seen ten times each, 60 bits from their own code (so within
    120 of each other), in a shuffled order: the same groups as the row-by-row rule."""
    rng = np.random.default_rng(7)
    people = random_codes(rng, 5)
    codes = random_codes(rng, 1000) + [flipped(p, 60, rng) for p in people for _ in range(10)]
    rng.shuffle(codes)
    got = grouping.groups(as_array(codes), LINK).tolist()
    assert got == reference(codes, LINK)
    assert max(got) + 1 == 1005
