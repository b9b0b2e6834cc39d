"""A trace as people read it: a table, CSV, JSON, or one self-contained HTML file with a timeline per checkpoint."""

from __future__ import annotations

import csv
import html
import io
import json

from edge.core.spans import span, when
from edge.tracer.operating_point import OperatingPoint
from edge.tracer.store import Gap
from edge.tracer.trace import Contact, Epoch, Sighting, Trace, Visit

SIGHTING_COLOUR = "#d62728"  # the traced person (tests look for these colours in a screenshot)
CONTACT_COLOUR = "#1f77b4"
LISTED = 50  # contacts listed per visit, the nearest in time; the rest are counted (a flood lists thousands)


def listed(v: Visit) -> list[Contact]:
    """The LISTED contacts of a visit nearest in time to a sighting, in the visit's order; under a flood,
    those seen by another unit than the flooding one come first (its junk, however near, cannot push them out)."""
    if len(v.contacts) <= LISTED:
        return v.contacts
    flooder = v.flooding[0] if v.flooding else None

    def junk(c: Contact) -> bool:
        return flooder is not None and all(r.device == flooder for r in c.rows)

    nearest = sorted(range(len(v.contacts)), key=lambda i: (junk(v.contacts[i]), abs(v.contacts[i].gap_ms), i))
    return [v.contacts[i] for i in sorted(nearest[:LISTED])]


def more(v: Visit) -> str:
    """What is not listed, in words ('' if everything is)."""
    left = len(v.contacts) - LISTED
    if left <= 0:
        return ""
    rows = sum(len(c.rows) for c in v.contacts) - sum(len(c.rows) for c in listed(v))
    first = f", those seen by other units than {v.flooding[0]} first" if v.flooding else ""
    return f"… and {left:,} more contact(s) ({rows:,} rows) farther in time: the {LISTED} nearest are listed{first}"


GAP_WORDS = {"offline": "offline", "camera": "camera failing", "clock": "clock unsynchronised"}


def gap_text(g: Gap) -> str:
    """One period of a unit's gap in coverage, in words (its checkpoint aside)."""
    until = when(g.to_ms) if g.to_ms is not None else "now (still so at its newest report)"
    return f"{g.device}: {GAP_WORDS.get(g.kind, g.kind)} {when(g.from_ms)} – {until} UTC"


def gaps_by_place(t: Trace) -> dict[tuple[str, str], list[Gap]]:
    places: dict[tuple[str, str], list[Gap]] = {}
    for g in t.gaps:
        places.setdefault((g.site, g.checkpoint), []).append(g)
    return places


def coverage_lines(t: Trace) -> list[str]:
    """Per checkpoint of the window, when it could not see anyone: silence there is not absence."""
    scope = f" at {', '.join(sorted(t.sites))}" if t.sites is not None else ""
    places = gaps_by_place(t)
    if not places:
        return [
            f"Coverage{scope}: no unit said it was offline, its camera failing or its clock unsynchronised in this "
            "window (units that report their status and health)"
        ]
    lines = [f"Coverage{scope}: when a unit was offline, its camera failing or its clock unsynchronised"]
    for (site, checkpoint), gaps in places.items():
        lines.append(f"  {site}/{checkpoint}")
        lines += [f"    {gap_text(g)}" for g in gaps]
    return lines


def flooding(v: Visit) -> str:
    if v.flooding is None:
        return ""
    device, rows, total = v.flooding
    return (
        f"unit {v.site}/{v.checkpoint}/{device} supplied {rows:,} of the {total:,} rows around this visit: "
        "it may be flooding the checkpoint with made-up FaceHashes"
    )


def short(code: str) -> str:
    return code[:21] + "…"


def distance(s: Sighting) -> float | int:
    """A sighting's distance as reports show it: fh1 the share of the bits (0 … 1), fh2 code units."""
    return round(s.distance / s.row.bits, 4) if s.row.scheme == "fh1" else s.distance


def distance_text(s: Sighting) -> str:
    return f"{s.distance / s.row.bits:.3f}" if s.row.scheme == "fh1" else str(s.distance)


def code_words(t: Trace) -> str:
    """What the query codes are: "fh1, 1024 bits" or "fh2"."""
    p = t.point
    return f"fh1, {p.bits} bits" if p.scheme == "fh1" else p.scheme


def threshold_words(t: Trace) -> str:
    return threshold_words_of(t.point)


def threshold_words_of(p: OperatingPoint) -> str:
    return f"{p.within} of {p.bits} ({p.fraction:.3f})" if p.scheme == "fh1" else p.within


def epoch_line(t: Trace, e: Epoch) -> str:
    """What a trace across epochs searched of one key id, in one line."""
    return _epoch_searched(e) + (f" (FaceHash re-keyed from key {e.rekeyed_from})" if e.rekeyed_from else "")


def _epoch_searched(e: Epoch) -> str:
    if e.point is None:
        return f"key {e.key_id}: no rows of this query stored (a quiet epoch, or one no unit has sent yet)"
    if not e.rows:
        return f"key {e.key_id}: no rows seen in this window"
    p = e.point
    seen = f"seen {when(e.first_ms)} – {when(e.last_ms)} UTC" if e.first_ms is not None else "seen in this window"
    threshold = threshold_words_of(p) if p.distance >= 0 else "no threshold strict enough"
    return f"key {e.key_id}: {p.rows:,} rows {seen}; {threshold}; expected false sightings {p.expected_false:.2g}"


def header(t: Trace) -> list[str]:
    p = t.point
    codes = f"{len(t.codes)} FaceHashes of one person" if len(t.codes) > 1 else "1 FaceHash"
    rekeyed = [e for e in t.epochs if e.rekeyed_from]
    if rekeyed:
        codes += f", {sum(len(e.codes) for e in rekeyed)} of them re-keyed from key {rekeyed[0].rekeyed_from}"
    photos = f"made from {p.photos} photos" if p.photos > 1 else "made from 1 photo"
    if t.across_epochs:
        keys = f"{len(t.epochs)} key ids, one per epoch"
        lines = [
            f"Trace of {codes} ({code_words(t)}, {keys}), {photos}",
            f"Searched {p.rows:,} person rows of this scheme seen {when(t.since_ms)} – {when(t.until_ms)} UTC, "
            f"in {len(t.epochs)} epochs (each key id's rows with its own FaceHash):",
            *[f"  {epoch_line(t, e)}" for e in t.epochs],
        ]
    else:
        lines = [
            f"Trace of {codes} ({short(t.codes[0])}, {code_words(t)}, key {t.key_id}), {photos}",
            f"Searched {p.rows:,} person rows of this key and scheme seen {when(t.since_ms)} – {when(t.until_ms)} UTC",
        ]
    lines.append(
        f"  the store holds events from {when(t.coverage[0])} to {when(t.coverage[1])} UTC"
        + (f"; the collector deletes them after {t.retention}" if t.retention else "")
    )
    if t.across_epochs:
        lines.append(
            f"Budget: one false-accept rate per row for every epoch, chosen from the {p.rows:,} rows searched in all; "
            f"{p.far:.1e} per row on average"
            + (" (extrapolated below the measured pairs)" if p.extrapolated else "")
            + (" (capped: no trace accepts more than 1 % per row)" if p.capped else "")
        )
    elif p.distance < 0:
        lines.append("Threshold: none is strict enough for that budget: no row can count as a sighting")
    else:
        lines.append(
            f"Threshold: {threshold_words(t)}; false-accept rate {p.far:.1e} per row"
            + (" (extrapolated below the measured pairs)" if p.extrapolated else "")
            + (" (capped: no trace accepts more than 1 % per row)" if p.capped else "")
        )
    found = "at least " if p.codes > 1 else ""
    lines.append(
        f"Expected false sightings: {p.expected_false:.2g}"
        + (" in all epochs" if t.across_epochs else "")
        + f"; expected share of true sightings found: {found}{100 * p.tar:.0f} % (calibrated on lfw_dev)"
    )
    if t.unreadable:
        lines.append(f"{t.unreadable} stored row(s) could not be read (an older version's) and were skipped")
    lines += [f"Note: {note}" for note in t.notes]
    floods = sorted({f"{v.site}/{v.checkpoint}/{v.flooding[0]}" for v in t.visits if v.flooding})
    if floods:
        lines.append(f"Warning: {', '.join(floods)} supplied most rows around a visit: see the visits below")
    return lines


def table(t: Trace) -> str:
    out = [*header(t), "", "Sightings, nearest first"]
    out.append(f"{'rank':>4}  {'distance':>8}  {'when (UTC)':<19}  {'site/checkpoint':<30} device")
    for rank, s in enumerate(t.sightings, 1):
        r = s.row
        place = f"{r.site}/{r.checkpoint}"
        doubt = "" if r.trusted_time else f"  (the unit's clock was {r.clock}: the time may be off)"
        out.append(f"{rank:>4}  {distance_text(s):>8}  {when(r.started_ms):<19}  {place:<30} {r.device}{doubt}")
    if not t.sightings:
        out.append("  (none)")
    out += ["", f"Visits and contacts (stride {span(t.stride_ms)}): one line per contact person per visit"]
    for v in t.visits:
        out.append(
            f"{v.site}/{v.checkpoint}  {when(v.first_ms)} – {when(v.last_ms, '%H:%M:%S')} UTC: "
            f"{len(v.sightings)} sighting(s), {len(v.contacts):,} contact(s)"
        )
        if v.flooding:
            out.append(f"    {flooding(v)}")
        if v.contacts:
            out.append(f"    {'first seen':<19}  {'last seen':<8}  {'times':>5}  {'nearest gap':>11}  FaceHash")
        for c in listed(v):
            out.append(
                f"    {when(c.first_ms):<19}  {when(c.last_ms, '%H:%M:%S'):<8}  {len(c.rows):>5}  "
                f"{c.gap_ms / 60000:>+7.1f} min  {short(c.rows[0].code_text)}"
            )
        if more(v):
            out.append(f"    {more(v)}")
    out += ["", *coverage_lines(t)]
    out.append(summary(t))
    return "\n".join(out) + "\n"


def summary(t: Trace) -> str:
    contacts = sum(len(v.contacts) for v in t.visits)
    return f"{len(t.sightings)} sighting(s) in {len(t.visits)} visit(s); {contacts:,} contact(s)"


def as_dict(t: Trace) -> dict:
    p = t.point
    return {
        "query": {
            "facehashes": t.codes,
            "photos": p.photos,
            "bits": p.bits,
            "key_id": t.key_id,
            "key_ids": [e.key_id for e in t.epochs],
            "scheme": p.scheme,
        },
        "window": {"since": when(t.since_ms), "until": when(t.until_ms), "stride_s": t.stride_ms / 1000},
        "stored": {"oldest": when(t.coverage[0]), "newest": when(t.coverage[1]), "retention": t.retention},
        "operating_point": {
            "rows_searched": p.rows,
            "max_distance": p.distance,
            "distance_unit": "bits" if p.scheme == "fh1" else f"{p.scheme} code units",
            "max_distance_bits": p.distance if p.scheme == "fh1" else None,
            "far_per_row": p.far,
            "expected_false_sightings": p.expected_false,
            "expected_true_share": p.tar,
            "extrapolated": p.extrapolated,
            "capped": p.capped,
        },
        "epochs": [
            {
                "key_id": e.key_id,
                "facehashes": e.codes,
                "stored": e.point is not None,
                "rows_searched": e.rows,
                "first": when(e.first_ms) if e.first_ms is not None else None,
                "last": when(e.last_ms) if e.last_ms is not None else None,
                "max_distance": e.point.distance if e.point else None,
                "far_per_row": e.point.far if e.point else None,
                "expected_false_sightings": e.expected_false,
                "rekeyed_from": e.rekeyed_from,
            }
            for e in t.epochs
        ],
        "unreadable_rows": t.unreadable,
        "notes": t.notes,
        "sightings": [
            {
                "rank": rank,
                "distance": distance(s),
                "at": when(s.row.started_ms),
                "site": s.row.site,
                "checkpoint": s.row.checkpoint,
                "device": s.row.device,
                "event_id": s.row.event_id,
                "key_id": s.row.key_id,
                "clock": s.row.clock,
                "facehash": s.row.code_text,
            }
            for rank, s in enumerate(t.sightings, 1)
        ],
        "visits": [
            {
                "site": v.site,
                "checkpoint": v.checkpoint,
                "key_id": v.key_id,
                "first": when(v.first_ms),
                "last": when(v.last_ms),
                "sightings": len(v.sightings),
                "contacts_total": len(v.contacts),
                "contacts_not_listed": len(v.contacts) - len(listed(v)),
                "flooding_unit": (
                    {"device": v.flooding[0], "rows": v.flooding[1], "of_rows": v.flooding[2]} if v.flooding else None
                ),
                "contacts": [
                    {
                        "facehash": c.rows[0].code_text,
                        "first": when(c.first_ms),
                        "last": when(c.last_ms),
                        "times": len(c.rows),
                        "nearest_gap_s": c.gap_ms / 1000,
                    }
                    for c in listed(v)
                ],
            }
            for v in t.visits
        ],
        "sites": sorted(t.sites) if t.sites is not None else None,
        "gaps": [
            {
                "site": g.site,
                "checkpoint": g.checkpoint,
                "device": g.device,
                "kind": g.kind,
                "from": when(g.from_ms),
                "to": when(g.to_ms) if g.to_ms is not None else None,
            }
            for g in t.gaps
        ],
    }


def as_json(t: Trace) -> str:
    return json.dumps(as_dict(t), indent=2) + "\n"


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # what a spreadsheet may read as a formula


def cell(value):
    """A CSV cell a spreadsheet shows as text: a text that starts like a formula gets a leading apostrophe
    (numbers are ours, and stay numbers)."""
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value


class SafeWriter:
    """csv.writer whose every text cell is neutralised (cell())."""

    def __init__(self, buffer: io.StringIO):
        self.writer = csv.writer(buffer)

    def writerow(self, row: list) -> None:
        self.writer.writerow([cell(value) for value in row])


def as_csv(t: Trace) -> str:
    buffer = io.StringIO()
    writer = SafeWriter(buffer)
    head = ["kind", "site", "checkpoint", "first", "last", "times", "distance", "gap_s", "clock", "facehash", "note"]
    writer.writerow(head)
    for e in t.epochs if t.across_epochs else []:  # what each epoch's search was: its rows, its threshold
        first = when(e.first_ms) if e.first_ms is not None else ""
        last = when(e.last_ms) if e.last_ms is not None else ""
        distance_cell = e.point.distance if e.point else ""
        writer.writerow(["epoch", "", "", first, last, e.rows, distance_cell, "", "", e.key_id, epoch_line(t, e)])
    for s in t.sightings:
        r = s.row
        row = ["sighting", r.site, r.checkpoint, when(r.started_ms), when(r.ended_ms), 1]
        writer.writerow([*row, distance(s), "", r.clock or "", r.code_text])
    for v in t.visits:
        for c in listed(v):
            row = ["contact", v.site, v.checkpoint, when(c.first_ms), when(c.last_ms), len(c.rows)]
            writer.writerow([*row, "", c.gap_ms / 1000, c.rows[0].clock or "", c.rows[0].code_text])
        cells = [v.site, v.checkpoint, when(v.first_ms), when(v.last_ms)]
        if more(v):
            writer.writerow(["contacts_not_listed", *cells, len(v.contacts) - len(listed(v)), "", "", "", "", more(v)])
        if v.flooding:
            writer.writerow(["flooding_unit", *cells, v.flooding[1], "", "", "", "", flooding(v)])
    for g in t.gaps:
        until = when(g.to_ms) if g.to_ms is not None else ""
        writer.writerow(["gap", g.site, g.checkpoint, when(g.from_ms), until, "", "", "", "", "", gap_text(g)])
    return buffer.getvalue()


# --- HTML: one file, no network at view time; no inline script or style attribute (a strict CSP serves it) ---

WIDTH, LEFT, RIGHT, LANE = 960, 170, 40, 18
GAP_COLOURS = {"offline": "#555555", "camera": "#e377c2", "clock": "#bcbd22"}  # far from red and blue

# Class-based, scoped to the report's own element: the console serves it as a file, as_html inlines it.
STYLE = """.trace-report{font-family:sans-serif}
.trace-report td,.trace-report th{padding:2px 10px;text-align:left;vertical-align:top}
.trace-report svg{display:block}
.trace-report .visit{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start;margin-bottom:16px}
.trace-report .warning{color:#8b0000;font-weight:bold}
.trace-report .note{color:#555555}
.trace-report .gap-offline{color:#555555}
.trace-report .gap-camera{color:#a0306e}
.trace-report .gap-clock{color:#6b6b10}
"""


def esc(value) -> str:
    return html.escape(str(value))


def _lane_svg(v: Visit, stride_ms: int, gaps: list[Gap]) -> str:
    start, end = v.first_ms - stride_ms, v.last_ms + stride_ms
    scale = (WIDTH - LEFT - RIGHT) / max(end - start, 1)

    def x(ms: int) -> float:
        return LEFT + (ms - start) * scale

    contacts = listed(v)
    height = 46 + LANE * max(len(contacts), 1)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" role="img">',
        f'<rect x="{x(start):.1f}" y="4" width="{(end - start) * scale:.1f}" height="{height - 8}" fill="#f2f2f2"/>',
        f'<text x="4" y="24" font-size="12">{esc(when(v.first_ms, "%Y-%m-%d"))} (UTC)</text>',
    ]
    for g in gaps:  # shaded where the checkpoint could not see anyone, under the marks
        low, high = max(g.from_ms, start), min(end if g.to_ms is None else g.to_ms, end)
        if high <= low:
            continue
        parts.append(
            f'<rect class="gap gap-{esc(g.kind)}" x="{x(low):.1f}" y="4" width="{max((high - low) * scale, 2):.1f}" '
            f'height="{height - 8}" fill="{GAP_COLOURS.get(g.kind, "#555555")}" fill-opacity="0.35">'
            f"<title>{esc(gap_text(g))}</title></rect>"
        )
    for ms in range(start, end + 1, max((end - start) // 4, 1)):
        parts.append(f'<line x1="{x(ms):.1f}" y1="4" x2="{x(ms):.1f}" y2="{height - 4}" stroke="#cccccc"/>')
        parts.append(f'<text x="{x(ms) + 2:.1f}" y="{height - 6}" font-size="10">{when(ms, "%H:%M")}</text>')
    for s in v.sightings:
        cx = x(s.row.started_ms)
        parts.append(
            f'<polygon points="{cx:.1f},12 {cx + 7:.1f},19 {cx:.1f},26 {cx - 7:.1f},19" fill="{SIGHTING_COLOUR}">'
            f"<title>sighting {esc(when(s.row.started_ms))}, distance "
            f"{distance_text(s)}</title></polygon>"
        )
    for i, c in enumerate(contacts):
        y = 34 + i * LANE
        x0, x1 = x(c.first_ms), max(x(c.last_ms), x(c.first_ms) + 6)
        parts.append(f'<text x="4" y="{y + 10}" font-size="11">{esc(f"contact {i + 1} · {len(c.rows)}×")}</text>')
        parts.append(
            f'<rect x="{x0:.1f}" y="{y}" width="{x1 - x0:.1f}" height="{LANE - 6}" fill="{CONTACT_COLOUR}">'
            f"<title>{esc(when(c.first_ms))} – {esc(when(c.last_ms))}</title></rect>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _table(head: list[str], rows: list[list]) -> str:
    cells = "".join(f"<th>{esc(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{cells}</tr>{body}</table>"


def _contacts_html(v: Visit) -> str:
    """What the text report lists of a visit: its contacts (numbered as on the timeline), the flooding
    warning and the line for those not listed."""
    parts = [f'<p class="warning">{esc(flooding(v))}</p>'] if v.flooding else []
    rows = [
        [
            f"contact {i}",
            when(c.first_ms),
            when(c.last_ms, "%H:%M:%S"),
            len(c.rows),
            f"{c.gap_ms / 60000:+.1f} min",
            short(c.rows[0].code_text),
        ]
        for i, c in enumerate(listed(v), 1)
    ]
    if rows:
        parts.append(_table(["", "first seen (UTC)", "last seen", "times", "nearest gap", "FaceHash"], rows))
    else:
        parts.append("<p>No contact.</p>")
    if more(v):
        parts.append(f'<p class="note">{esc(more(v))}</p>')
    return "<div>" + "".join(parts) + "</div>"


def html_body(t: Trace) -> str:
    """The report as an HTML fragment (no <html> or <head>): everything the text report holds, styled only
    by STYLE's classes."""
    body = ['<div class="trace-report">'] + [f"<p>{esc(line)}</p>" for line in header(t)]
    body.append("<h2>Sightings, nearest first</h2>")
    sightings = [
        [
            rank,
            distance_text(s),
            when(s.row.started_ms),
            f"{s.row.site}/{s.row.checkpoint}",
            s.row.device,
            "" if s.row.trusted_time else f"the unit's clock was {s.row.clock}: the time may be off",
        ]
        for rank, s in enumerate(t.sightings, 1)
    ]
    head = ["rank", "distance", "when (UTC)", "site/checkpoint", "device", "note"]
    body.append(_table(head, sightings) if sightings else "<p>(none)</p>")
    body.append(
        f"<h2>Visits and contacts (stride {esc(span(t.stride_ms))}): one line per contact person per visit</h2>"
        "<p>Timeline: red, the traced person; blue, contacts (first to last seen); light grey, "
        f"the stride ({esc(span(t.stride_ms))}) before the first and after the last sighting of a visit; shaded, a "
        "unit offline (dark grey), its camera failing (pink) or its clock unsynchronised (olive).</p>"
    )
    gaps = gaps_by_place(t)
    for v in t.visits:
        body.append(
            f"<h3>{esc(v.site)}/{esc(v.checkpoint)} {esc(when(v.first_ms))} – {esc(when(v.last_ms, '%H:%M:%S'))} "
            f"UTC: {len(v.sightings)} sighting(s), {len(v.contacts):,} contact(s)</h3>"
        )
        lane = _lane_svg(v, t.stride_ms, gaps.get((v.site, v.checkpoint), []))
        body.append(f'<div class="visit"><div>{lane}</div>{_contacts_html(v)}</div>')
    if not t.visits:
        body.append("<p>No sightings in this window.</p>")
    lines = coverage_lines(t)
    body.append(f"<h2>{esc(lines[0])}</h2>")
    for (site, checkpoint), place_gaps in gaps.items():
        body.append(f"<h3>{esc(site)}/{esc(checkpoint)}</h3><ul>")
        body += [f'<li class="gap-{esc(g.kind)}">{esc(gap_text(g))}</li>' for g in place_gaps]
        body.append("</ul>")
    body.append(f"<p>{esc(summary(t))}</p></div>")
    return "".join(body)


def as_html(t: Trace) -> str:
    """A whole page, one file: html_body with STYLE inlined."""
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>traceon-edge trace</title>'
        f"<style>body{{margin:16px}}{STYLE}</style></head><body><h1>Trace</h1>{html_body(t)}</body></html>\n"
    )


FORMATS = {"table": table, "csv": as_csv, "json": as_json, "html": as_html}
