"""A trace: every sighting of one person, and who was at the same checkpoint around each visit.

Sightings are the stored rows within the operating point's distance of the query (one FaceHash, or
several of one person: a row counts if it is near any of them), ranked by distance. Sightings at one
checkpoint that follow each other within the stride form a visit; a contact is anyone else seen there
within the stride before or after a sighting of the visit, grouped into one line per person per visit.
A query of fh2 codes searches fh2 rows, one of fh1 codes fh1 rows; contacts are of the query's scheme too.
"""

from __future__ import annotations

import collections
import datetime
from dataclasses import dataclass, field

import numpy as np

from edge.core import facehash
from edge.core.errors import TraceError
from edge.tracer import grouping, operating_point
from edge.tracer.store import Gap, Row, Store
from edge.tracer.store.counts import stored_count

CONTACT_LINK_FAR = 1e-5  # two rows of a visit are one contact person within this FAR's distance
# One unit that supplied more than this share of a visit's rows, and at least FLOOD_ROWS of them, is named:
# a unit sending many made-up FaceHashes would bury the real contacts (issue 19).
FLOOD_SHARE, FLOOD_ROWS = 0.5, 1000


@dataclass(frozen=True)
class Sighting:
    row: Row
    distance: int  # to the nearest query code: fh1 bits, fh2 code units


@dataclass
class Contact:
    """One other person during one visit: every row of them in the visit's window."""

    rows: list[Row]
    gap_ms: int  # from the nearest sighting of the visit: negative before it, 0 if they overlap

    @property
    def first_ms(self) -> int:
        return self.rows[0].started_ms

    @property
    def last_ms(self) -> int:
        return max(r.ended_ms for r in self.rows)


@dataclass
class Visit:
    site: str
    checkpoint: str
    sightings: list[Sighting]
    contacts: list[Contact] = field(default_factory=list)
    flooding: tuple[str, int, int] | None = None  # a unit that supplied most rows: (device, its rows, all rows)

    @property
    def first_ms(self) -> int:
        return min(s.row.started_ms for s in self.sightings)

    @property
    def last_ms(self) -> int:
        return max(s.row.ended_ms for s in self.sightings)


@dataclass
class Trace:
    codes: list[str]
    key_id: str
    point: operating_point.OperatingPoint  # its scheme is the query's
    stride_ms: int
    since_ms: int
    until_ms: int
    coverage: tuple[int | None, int | None]  # oldest and newest stored event
    retention: str | None  # as the collector was told, if it said
    unreadable: int
    sightings: list[Sighting]  # ranked by distance
    visits: list[Visit]  # in time order
    notes: list[str] = field(default_factory=list)  # what the reader should know about the store itself
    gaps: list[Gap] = field(default_factory=list)  # when a unit in scope was offline, its camera or clock failing
    sites: frozenset[str] | None = None  # the sites searched (None: every site)


def query_codes(texts: list[str]) -> list[facehash.FaceHash]:
    codes = [facehash.parse(t) for t in texts]
    if len({c.scheme for c in codes}) > 1:
        raise TraceError(
            "the FaceHashes of one trace must be of one scheme (these are fh1 and fh2): trace each scheme apart"
        )
    if len({(c.key_id, len(c.bits)) for c in codes}) > 1:
        raise TraceError("the FaceHashes of one trace must share one key and one length: they are one person")
    return codes


def run(
    store: Store,
    texts: list[str],
    stride: datetime.timedelta,
    since: datetime.timedelta,
    *,
    photos: int = 1,
    max_false: float = 1.0,
    far: float | None = None,
    now: datetime.datetime | None = None,
    sites: frozenset[str] | None = None,
) -> Trace:
    """With `sites`, the search, its budget of false sightings, the contacts and the gaps are those of
    these sites only (a user scoped to them sees nothing of the others)."""
    codes = query_codes(texts)
    scheme, key_id, bits = codes[0].scheme, codes[0].key_id, len(codes[0].bits)
    if not store.holds(key_id):
        keys = ", ".join(sorted(store.keys())) or "none"
        raise TraceError(
            f"this FaceHash was made with key {key_id}, but the database holds sightings of key(s) {keys}: "
            "FaceHashes of different keys cannot be linked (that is what a key change is for)"
        )
    if not store.holds(key_id, bits, scheme):
        raise TraceError(f"the database holds no {bits}-bit {scheme} FaceHashes of key {key_id}")
    until = now or datetime.datetime.now(datetime.UTC)
    since_ms, until_ms = _ms(until - since), _ms(until)
    packed = [c.packed for c in codes]

    # The budget needs the number of rows, which the search counts: search at the loosest distance the
    # calibration allows, then keep what the operating point for that many rows accepts.
    # (An engine that counts before it measures may keep only what that many rows allow: `limit_for`.)
    def point_for(rows: int) -> operating_point.OperatingPoint:
        return operating_point.choose(
            bits, rows, photos=photos, codes=len(codes), max_false=max_false, far=far, scheme=scheme
        )

    loosest = operating_point.choose(
        bits, 1, photos=photos, codes=len(codes), far=operating_point.MAX_FAR, scheme=scheme
    ).distance
    window = (since_ms, until_ms)
    search = store.near(
        scheme, key_id, bits, packed, loosest, *window, sites=sites, limit_for=lambda n: point_for(n).distance
    )
    point = point_for(search.searched)
    hits = [(i, d) for i, d in search.hits if d <= point.distance]
    by_id = {r.id: r for r in store.rows([i for i, _ in hits])}
    sightings = [Sighting(by_id[i], d) for i, d in hits if i in by_id]
    stride_ms = round(stride.total_seconds() * 1000)
    visits = _visits(sightings, stride_ms)
    link = operating_point.curve(bits, 1, scheme).distance_at(CONTACT_LINK_FAR)
    seen = {s.row.id for s in sightings}
    for visit in visits:
        around = store.around(
            key_id, visit.site, visit.checkpoint, visit.first_ms - stride_ms, visit.last_ms + stride_ms
        )
        rows = [r for r in around if r.id not in seen and r.bits == bits and r.scheme == scheme]
        visit.contacts = _contacts(visit, rows, link, scheme)
        visit.flooding = _flooding(rows)
    return Trace(
        codes=[str(c) for c in codes],
        key_id=key_id,
        point=point,
        stride_ms=stride_ms,
        since_ms=since_ms,
        until_ms=until_ms,
        coverage=store.coverage(),
        retention=store.meta("retention"),
        unreadable=search.unreadable,
        sightings=sightings,
        visits=visits,
        notes=store_notes(store),
        gaps=store.gaps(since_ms, until_ms, sites),
        sites=sites,
    )


def store_notes(store: Store) -> list[str]:
    """A damaged count in the store is unknown: said, not taken as 0 in silence, and never a crash."""
    if stored_count(store, "unreadable_rows") is None:
        said = store.meta("unreadable_rows")
        return [f"the store's count of rows it could not read ({said!r}) is not a number: those rows are unknown"]
    return []


def _ms(moment: datetime.datetime) -> int:
    return round(moment.timestamp() * 1000)


def _visits(sightings: list[Sighting], stride_ms: int) -> list[Visit]:
    visits: list[Visit] = []
    open_visits: dict[tuple[str, str], Visit] = {}
    for s in sorted(sightings, key=lambda s: (s.row.started_ms, s.row.id)):
        place = (s.row.site, s.row.checkpoint)
        visit = open_visits.get(place)
        if visit is None or s.row.started_ms - visit.last_ms > stride_ms:
            visit = Visit(*place, [])
            visits.append(visit)
            open_visits[place] = visit
        visit.sightings.append(s)
    return visits


def _flooding(rows: list[Row]) -> tuple[str, int, int] | None:
    if len(rows) < FLOOD_ROWS:
        return None
    device, count = collections.Counter(r.device for r in rows).most_common(1)[0]
    return (device, count, len(rows)) if count >= FLOOD_ROWS and count > FLOOD_SHARE * len(rows) else None


def gap_ms(row: Row, other: Row) -> int:
    """Time from `other` to `row`: negative if `row` ends before `other` starts, 0 if they overlap."""
    if row.ended_ms < other.started_ms:
        return row.ended_ms - other.started_ms
    if row.started_ms > other.ended_ms:
        return row.started_ms - other.ended_ms
    return 0


def _contacts(visit: Visit, rows: list[Row], link: int, scheme: str = "fh1") -> list[Contact]:
    """One contact per person: each row joins the first contact whose first row is within `link` (fh1 bits,
    fh2 code units; grouping.py finds them without comparing every row with every contact)."""
    if not rows:
        return []
    codes = np.frombuffer(b"".join(r.code for r in rows), np.uint8).reshape(len(rows), -1)
    contacts: list[Contact] = []
    numbers = grouping.groups(codes, link, scheme).tolist()
    for row, number, gap in zip(rows, numbers, _gaps(visit, rows), strict=True):
        if number == len(contacts):
            contacts.append(Contact([row], gap))
        else:
            contact = contacts[number]
            contact.rows.append(row)
            contact.gap_ms = min(contact.gap_ms, gap, key=abs)
    return contacts


def _gaps(visit: Visit, rows: list[Row]) -> list[int]:
    """Each row's gap_ms from the nearest sighting of the visit (the first such sighting on a tie)."""
    started = np.array([r.started_ms for r in rows], np.int64)
    ended = np.array([r.ended_ms for r in rows], np.int64)
    each = [
        np.where(ended < s.row.started_ms, ended - s.row.started_ms, np.maximum(started - s.row.ended_ms, 0))
        for s in visit.sightings
    ]
    gaps = np.stack(each)
    return gaps[np.abs(gaps).argmin(0), np.arange(len(rows))].tolist()


def bits_apart(a: bytes, b: bytes) -> int:
    return (int.from_bytes(a) ^ int.from_bytes(b)).bit_count()
