"""Time spans: ASCII digits and s, m, h or d, at most a bound; any other text is a SpanError, never a crash."""

from __future__ import annotations

import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.core.errors import SpanError
from edge.core.spans import MOST, parse_span, span

MS = datetime.timedelta(milliseconds=1)
NUMBER = st.from_regex(r"\A(\d{1,12}(\.\d{0,6})?|\.\d{1,6})\Z", fullmatch=True).filter(lambda t: t.isascii())


@given(st.one_of(st.text(), NUMBER.map(lambda n: n + "d"), st.integers(0, 10**30).map(lambda n: f"{n}s")))
def test_any_text_is_a_span_or_a_span_error(text):
    try:
        value = parse_span(text)
    except SpanError as e:
        assert "is not a duration" in str(e) or "is longer than 3650d" in str(e)
    else:
        assert datetime.timedelta(0) <= value <= MOST


@given(st.integers(min_value=0, max_value=MOST // MS))
def test_span_writes_what_parse_span_reads(ms):
    assert parse_span(span(ms)) == ms * MS


@given(NUMBER, st.sampled_from("smhd"))
def test_a_valid_span_reads_back_from_its_text(number, unit):
    try:
        value = parse_span(number + unit)
    except SpanError as e:
        assert "longer than" in str(e)
        return
    assert abs(parse_span(span(round(value / MS))) - value) <= MS / 2


@pytest.mark.parametrize(
    "text", ["²d", "٣d", "１d", "3d\n", " 3d", "3 d", "3", "d", "-3d", "1e5d", "nand", "infd", "3D", "3w", ""]
)
def test_what_is_not_a_span_is_said(text):
    with pytest.raises(SpanError, match="is not a duration: use a number and s, m, h or d"):
        parse_span(text)


@pytest.mark.parametrize("text", ["3651d", "999999999d", "3000000d", "9" * 400 + "d", "87601h"])
def test_a_span_past_the_bound_says_the_bound(text):
    with pytest.raises(SpanError, match=r"is longer than 3650d, the longest span allowed here"):
        parse_span(text)


def test_the_bound_is_the_callers_to_choose():
    assert parse_span("3650d") == MOST
    assert parse_span("2h", most=datetime.timedelta(hours=2)) == datetime.timedelta(hours=2)
    with pytest.raises(SpanError, match="longer than 2h"):
        parse_span("121m", most=datetime.timedelta(hours=2))
