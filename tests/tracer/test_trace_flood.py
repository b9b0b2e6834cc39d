"""A flooded checkpoint (issue 19): one unit's 10,000 random FaceHashes around a visit. The trace groups
them (each its own contact), lists only the contacts nearest in time, counts the rest, and names the unit,
in every format."""

from __future__ import annotations

import csv
import datetime
import io
import json

import numpy as np
import pytest
from support.rows import MINUTE, NOW, NOW_MS, code_text, event, flipped, random_codes

from edge.tracer import report, store, trace

STRIDE, SINCE = datetime.timedelta(minutes=30), datetime.timedelta(days=14)
JUNK = 10_000


@pytest.fixture(scope="module")
def flooded(tmp_path_factory):
    """The traced person once at the library (unit-1), three people there within a minute of it, seen
    three times each (unit-1), and unit-9's junk 2 to 29 minutes before and after."""
    rng = np.random.default_rng(1919)
    query, *people = random_codes(rng, 4)
    at = NOW_MS - 3 * 60 * MINUTE
    made = [event([flipped(query, 10, rng)], at)]
    made += [event([flipped(p, 40, rng)], at + int(rng.integers(-60_000, 60_000))) for p in people for _ in range(3)]
    junk = random_codes(rng, JUNK)
    for first in range(0, JUNK, 100):
        minutes = int(rng.integers(2, 29)) * (1 if first % 200 else -1)
        made.append(event(junk[first : first + 100], at + minutes * MINUTE, device="unit-9"))
    db = store.open_store(str(tmp_path_factory.mktemp("flood") / "s.sqlite"))
    db.add(made)
    result = trace.run(db, [code_text(query)], STRIDE, SINCE, now=NOW)
    db.close()
    [visit] = result.visits
    return result, [c.rows[0].code_text for c in visit.contacts if len(c.rows) == 3]  # the people's first rows


def test_every_junk_row_is_its_own_contact_and_the_people_are_one_each(flooded):
    result, people = flooded
    [visit] = result.visits
    assert len(visit.contacts) == JUNK + 3
    assert len(people) == 3 and sum(len(c.rows) for c in visit.contacts) == JUNK + 9
    assert visit.flooding == ("unit-9", JUNK, JUNK + 9)


def test_the_table_lists_the_nearest_contacts_counts_the_rest_and_names_the_unit(flooded):
    result, people = flooded
    text = report.table(result)
    lines = text.splitlines()
    listed = [line for line in lines if line.startswith("    20") and "min  fh1:" in line]
    assert len(listed) == report.LISTED
    for person in people:  # the three people met within a minute are among the nearest
        assert any(person[:21] in line and line.split()[3] == "3" for line in listed)
    assert f"… and {JUNK + 3 - report.LISTED:,} more contact(s) ({JUNK + 9 - report.LISTED - 6:,} rows)" in text
    assert f"unit campus/library/unit-9 supplied {JUNK:,} of the {JUNK + 9:,} rows around this visit" in text
    assert "Warning: campus/library/unit-9 supplied most rows around a visit" in text
    assert f"1 sighting(s) in 1 visit(s); {JUNK + 3:,} contact(s)" in text


def test_json_csv_and_html_carry_the_same_bound_and_warning(flooded):
    result, people = flooded
    [visit] = json.loads(report.as_json(result))["visits"]
    assert len(visit["contacts"]) == report.LISTED
    assert visit["contacts_total"] == JUNK + 3 and visit["contacts_not_listed"] == JUNK + 3 - report.LISTED
    assert visit["flooding_unit"] == {"device": "unit-9", "rows": JUNK, "of_rows": JUNK + 9}
    assert set(people) <= {c["facehash"] for c in visit["contacts"]}
    rows = list(csv.DictReader(io.StringIO(report.as_csv(result))))
    kinds = [r["kind"] for r in rows]
    assert kinds.count("contact") == report.LISTED
    [more] = [r for r in rows if r["kind"] == "contacts_not_listed"]
    assert int(more["times"]) == JUNK + 3 - report.LISTED
    [flood] = [r for r in rows if r["kind"] == "flooding_unit"]
    assert "unit campus/library/unit-9 supplied" in flood["note"]
    page = report.as_html(result)
    assert page.count("<title>20") == report.LISTED  # one bar per listed contact
    assert f"and {JUNK + 3 - report.LISTED:,} more contact(s)" in page
    assert "unit campus/library/unit-9 supplied" in page


def test_a_visit_of_few_rows_lists_every_contact_and_names_no_unit(db):
    rng = np.random.default_rng(3)
    query, *others = random_codes(rng, 4)
    at = NOW_MS - 60 * MINUTE
    db.add([event([flipped(query, 10, rng)], at), event(others, at + MINUTE, device="unit-9")])
    result = trace.run(db, [code_text(query)], STRIDE, SINCE, now=NOW)
    [visit] = result.visits
    assert len(visit.contacts) == 3 and visit.flooding is None
    text = report.table(result)
    assert "more contact(s)" not in text and "flooding" not in text and "Warning" not in text


def test_contacts_seen_by_other_units_are_listed_before_nearer_junk(tmp_path):
    """The junk sits within seconds of the sighting and the real people 20 minutes away: listing the nearest
    in time alone would list only junk."""
    rng = np.random.default_rng(2019)
    query, *people = random_codes(rng, 4)
    at = NOW_MS - 3 * 60 * MINUTE
    made = [event([flipped(query, 10, rng)], at)]
    made += [event([flipped(p, 40, rng)], at + 20 * MINUTE + n * 1000) for n, p in enumerate(people)]
    junk = random_codes(rng, 2000)
    made += [event(junk[i : i + 100], at + (i // 100 - 10) * 1000, device="unit-9") for i in range(0, 2000, 100)]
    db = store.open_store(str(tmp_path / "s.sqlite"))
    db.add(made)
    result = trace.run(db, [code_text(query)], STRIDE, SINCE, now=NOW)
    db.close()
    [visit] = result.visits
    assert visit.flooding == ("unit-9", 2000, 2003)
    shown = report.listed(visit)
    assert len(shown) == report.LISTED
    assert sum(all(r.device == "unit-1" for r in c.rows) for c in shown) == 3  # every real contact is listed
    assert "those seen by other units than unit-9 first" in report.more(visit)
