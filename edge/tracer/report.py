"""A trace as people read it: a table, CSV, JSON, or one self-contained HTML file with a timeline per checkpoint."""

from __future__ import annotations

import csv
import html
import io
import json

from edge.core.spans import span, when
from edge.tracer.trace import Contact, Trace, Visit

SIGHTING_COLOUR = "#d62728"  # the traced person (tests look for these colours in a screenshot)
CONTACT_COLOUR = "#1f77b4"
LISTED = 50  # contacts listed per visit, the nearest in time; the rest are counted (a flood lists thousands)


def listed(v: Visit) -> list[Contact]:
    """The LISTED contacts of a visit nearest in time to a sighting, in the visit's order."""
    if len(v.contacts) <= LISTED:
        return v.contacts
    nearest = sorted(range(len(v.contacts)), key=lambda i: (abs(v.contacts[i].gap_ms), i))[:LISTED]
    return [v.contacts[i] for i in sorted(nearest)]


def more(v: Visit) -> str:
    """What is not listed, in words ('' if everything is)."""
    left = v.contacts[LISTED:] if len(v.contacts) > LISTED else []
    if not left:
        return ""
    rows = sum(len(c.rows) for c in v.contacts) - sum(len(c.rows) for c in listed(v))
    return f"… and {len(left):,} more contact(s) ({rows:,} rows) farther in time: the {LISTED} nearest are listed"


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


def header(t: Trace) -> list[str]:
    p = t.point
    codes = f"{len(t.codes)} FaceHashes of one person" if len(t.codes) > 1 else "1 FaceHash"
    photos = f"made from {p.photos} photos" if p.photos > 1 else "made from 1 photo"
    lines = [
        f"Trace of {codes} ({short(t.codes[0])}, {p.bits} bits, key {t.key_id}), {photos}",
        f"Searched {p.rows:,} person rows of this key seen {when(t.since_ms)} – {when(t.until_ms)} UTC",
        f"  the store holds events from {when(t.coverage[0])} to {when(t.coverage[1])} UTC"
        + (f"; the collector deletes them after {t.retention}" if t.retention else ""),
    ]
    if p.distance < 0:
        lines.append("Threshold: none is strict enough for that budget: no row can count as a sighting")
    else:
        lines.append(
            f"Threshold: within {p.distance} of {p.bits} bits ({p.fraction:.3f}); false-accept rate {p.far:.1e} per row"
            + (" (extrapolated below the measured pairs)" if p.extrapolated else "")
            + (" (capped: no trace accepts more than 1 % per row)" if p.capped else "")
        )
    found = "at least " if p.codes > 1 else ""
    lines.append(
        f"Expected false sightings: {p.expected_false:.2g}; expected share of true sightings found: "
        f"{found}{100 * p.tar:.0f} % (calibrated on lfw_dev)"
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
        out.append(f"{rank:>4}  {s.distance / r.bits:>8.3f}  {when(r.started_ms):<19}  {place:<30} {r.device}{doubt}")
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
    contacts = sum(len(v.contacts) for v in t.visits)
    out.append(f"{len(t.sightings)} sighting(s) in {len(t.visits)} visit(s); {contacts:,} contact(s)")
    return "\n".join(out) + "\n"


def as_dict(t: Trace) -> dict:
    p = t.point
    return {
        "query": {"facehashes": t.codes, "photos": p.photos, "bits": p.bits, "key_id": t.key_id},
        "window": {"since": when(t.since_ms), "until": when(t.until_ms), "stride_s": t.stride_ms / 1000},
        "stored": {"oldest": when(t.coverage[0]), "newest": when(t.coverage[1]), "retention": t.retention},
        "operating_point": {
            "rows_searched": p.rows,
            "max_distance_bits": p.distance,
            "far_per_row": p.far,
            "expected_false_sightings": p.expected_false,
            "expected_true_share": p.tar,
            "extrapolated": p.extrapolated,
            "capped": p.capped,
        },
        "unreadable_rows": t.unreadable,
        "notes": t.notes,
        "sightings": [
            {
                "rank": rank,
                "distance": round(s.distance / s.row.bits, 4),
                "at": when(s.row.started_ms),
                "site": s.row.site,
                "checkpoint": s.row.checkpoint,
                "device": s.row.device,
                "event_id": s.row.event_id,
                "clock": s.row.clock,
                "facehash": s.row.code_text,
            }
            for rank, s in enumerate(t.sightings, 1)
        ],
        "visits": [
            {
                "site": v.site,
                "checkpoint": v.checkpoint,
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
    }


def as_json(t: Trace) -> str:
    return json.dumps(as_dict(t), indent=2) + "\n"


def as_csv(t: Trace) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    head = ["kind", "site", "checkpoint", "first", "last", "times", "distance", "gap_s", "clock", "facehash", "note"]
    writer.writerow(head)
    for s in t.sightings:
        r = s.row
        row = ["sighting", r.site, r.checkpoint, when(r.started_ms), when(r.ended_ms), 1]
        writer.writerow([*row, round(s.distance / r.bits, 4), "", r.clock or "", r.code_text])
    for v in t.visits:
        for c in listed(v):
            row = ["contact", v.site, v.checkpoint, when(c.first_ms), when(c.last_ms), len(c.rows)]
            writer.writerow([*row, "", c.gap_ms / 1000, c.rows[0].clock or "", c.rows[0].code_text])
        cells = [v.site, v.checkpoint, when(v.first_ms), when(v.last_ms)]
        if more(v):
            writer.writerow(["contacts_not_listed", *cells, len(v.contacts) - len(listed(v)), "", "", "", "", more(v)])
        if v.flooding:
            writer.writerow(["flooding_unit", *cells, v.flooding[1], "", "", "", "", flooding(v)])
    return buffer.getvalue()


# --- HTML: one file, no network at view time ------------------------------------------------------------

WIDTH, LEFT, RIGHT, LANE = 960, 170, 40, 18


def _lane_svg(v: Visit, stride_ms: int) -> str:
    start, end = v.first_ms - stride_ms, v.last_ms + stride_ms
    scale = (WIDTH - LEFT - RIGHT) / max(end - start, 1)

    def x(ms: int) -> float:
        return LEFT + (ms - start) * scale

    contacts = listed(v)
    height = 46 + LANE * max(len(contacts), 1)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" role="img">',
        f'<rect x="{x(v.first_ms - stride_ms):.1f}" y="4" width="{(end - start) * scale:.1f}" height="{height - 8}" '
        'fill="#f2f2f2"/>',
        f'<text x="4" y="24" font-size="12">{html.escape(when(v.first_ms, "%Y-%m-%d"))} (UTC)</text>',
    ]
    for ms in range(start, end + 1, max((end - start) // 4, 1)):
        parts.append(f'<line x1="{x(ms):.1f}" y1="4" x2="{x(ms):.1f}" y2="{height - 4}" stroke="#cccccc"/>')
        parts.append(f'<text x="{x(ms) + 2:.1f}" y="{height - 6}" font-size="10">{when(ms, "%H:%M")}</text>')
    for s in v.sightings:
        cx = x(s.row.started_ms)
        parts.append(
            f'<polygon points="{cx:.1f},12 {cx + 7:.1f},19 {cx:.1f},26 {cx - 7:.1f},19" fill="{SIGHTING_COLOUR}">'
            f"<title>sighting {html.escape(when(s.row.started_ms))}, distance "
            f"{s.distance / s.row.bits:.3f}</title></polygon>"
        )
    for i, c in enumerate(contacts):
        y = 34 + i * LANE
        x0, x1 = x(c.first_ms), max(x(c.last_ms), x(c.first_ms) + 6)
        label = html.escape(f"contact {i + 1} · {len(c.rows)}×")
        parts.append(f'<text x="4" y="{y + 10}" font-size="11">{label}</text>')
        parts.append(
            f'<rect x="{x0:.1f}" y="{y}" width="{x1 - x0:.1f}" height="{LANE - 6}" fill="{CONTACT_COLOUR}">'
            f"<title>{html.escape(when(c.first_ms))} – {html.escape(when(c.last_ms))}</title></rect>"
        )
    parts.append("</svg>")
    return "".join(parts)


def as_html(t: Trace) -> str:
    places: dict[tuple[str, str], list[Visit]] = {}
    for v in t.visits:
        places.setdefault((v.site, v.checkpoint), []).append(v)
    body = [f"<p>{html.escape(line)}</p>" for line in header(t)]
    body.append("<h2>Sightings, nearest first</h2><table><tr><th>rank</th><th>distance</th><th>when (UTC)</th>")
    body.append("<th>site/checkpoint</th><th>device</th></tr>")
    for rank, s in enumerate(t.sightings, 1):
        r = s.row
        cells = [rank, f"{s.distance / r.bits:.3f}", when(r.started_ms), f"{r.site}/{r.checkpoint}", r.device]
        body.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>")
    body.append("</table>")
    body.append(
        f"<h2>Timeline per checkpoint</h2><p>Red: the traced person; blue: contacts (first to last seen); grey: "
        f"the stride ({html.escape(span(t.stride_ms))}) before the first and after the last sighting of a visit.</p>"
    )
    for (site, checkpoint), visits in places.items():
        body.append(f"<h3>{html.escape(site)}/{html.escape(checkpoint)}</h3>")
        for v in visits:
            body += [f"<p>{html.escape(said)}</p>" for said in (flooding(v), more(v)) if said]
            body.append(_lane_svg(v, t.stride_ms))
    if not places:
        body.append("<p>No sightings in this window.</p>")
    style = "body{font-family:sans-serif;margin:16px}td,th{padding:2px 10px;text-align:left}svg{display:block}"
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>traceon-edge trace</title>'
        f"<style>{style}</style></head><body><h1>Trace</h1>{''.join(body)}</body></html>\n"
    )


FORMATS = {"table": table, "csv": as_csv, "json": as_json, "html": as_html}
