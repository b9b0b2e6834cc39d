"""A trace: every sighting of one person, and who was at the same checkpoint around each visit.

Sightings are the stored rows within the operating point's distance of the query (one FaceHash, or
several of one person: a row counts if it is near any of them), ranked by distance. Sightings at one
checkpoint that follow each other within the stride form a visit; a contact is anyone else seen there
within the stride before or after a sighting of the visit, grouped into one line per person per visit.
A query of fh2 codes searches fh2 rows, one of fh1 codes fh1 rows; contacts are of the query's scheme too.

A query may hold FaceHashes of several key ids (one per epoch of a key chain: `embed --key-chain`): each key
id's rows are searched with that key's codes only, under one false-accept rate per row chosen from the rows
searched across all of them, so the whole trace's expected false sightings stay within the budget. A visit is
of one key id, and so are its contacts: a FaceHash belongs to its epoch, and links to nothing of another.
"""

from __future__ import annotations

import collections
import dataclasses
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
    key_id: str = ""  # the epoch's key id its sightings (and contacts) are rows of
    contacts: list[Contact] = field(default_factory=list)
    flooding: tuple[str, int, int] | None = None  # a unit that supplied most rows: (device, its rows, all rows)

    @property
    def first_ms(self) -> int:
        return min(s.row.started_ms for s in self.sightings)

    @property
    def last_ms(self) -> int:
        return max(s.row.ended_ms for s in self.sightings)


@dataclass(frozen=True)
class Epoch:
    """What a trace searched of one key id: its rows in the window, under its own threshold."""

    key_id: str
    codes: list[str]
    point: operating_point.OperatingPoint | None  # its rows, distance, FAR; None: it holds no rows of this query
    first_ms: int | None = None  # when the first and the last of those rows started
    last_ms: int | None = None
    rekeyed_from: str | None = None  # its codes are the query's of this key id, re-keyed (trace --key-chain)

    @property
    def rows(self) -> int:
        return self.point.rows if self.point else 0

    @property
    def expected_false(self) -> float:
        return self.point.expected_false if self.point else 0.0


@dataclass
class Trace:
    codes: list[str]
    key_id: str  # the first key id searched (the only one, unless the query spans epochs)
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
    epochs: list[Epoch] = field(default_factory=list)  # one per key id asked, in the query's order

    @property
    def across_epochs(self) -> bool:
        return len(self.epochs) > 1


def query_codes(texts: list[str]) -> dict[str, list[facehash.FaceHash]]:
    """The query's codes by key id (in the order given): one scheme for all, one length per key id."""
    codes = [facehash.parse(t) for t in texts]
    if len({c.scheme for c in codes}) > 1:
        raise TraceError(
            "the FaceHashes of one trace must be of one scheme (these are fh1 and fh2): trace each scheme apart"
        )
    by_key: dict[str, list[facehash.FaceHash]] = {}
    for code in codes:
        by_key.setdefault(code.key_id, []).append(code)
    for key_id, of_key in by_key.items():
        if len({len(c.bits) for c in of_key}) > 1:
            raise TraceError(f"the FaceHashes of key {key_id} in one trace must share one length: they are one person")
    return by_key


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
    rekeyed: dict[str, str] | None = None,
) -> Trace:
    """With `sites`, the search, its budget of false sightings, the contacts and the gaps are those of
    these sites only (a user scoped to them sees nothing of the others). `rekeyed`: which key ids' codes
    were re-keyed from which (key_chain.over_window), said per epoch."""
    rekeyed = rekeyed or {}
    by_key = query_codes(texts)
    codes = [c for of_key in by_key.values() for c in of_key]
    scheme = codes[0].scheme
    held = [k for k, of_key in by_key.items() if store.holds(k, len(of_key[0].bits), scheme)]
    if not held:
        _nothing_held(store, by_key, scheme)
    until = now or datetime.datetime.now(datetime.UTC)
    since_ms, until_ms = _ms(until - since), _ms(until)
    window = (since_ms, until_ms)

    # The budget needs the number of rows, which the search counts: search at the loosest distance the
    # calibration allows, then keep what the operating point for that many rows accepts. Across epochs the
    # rows are counted over all of them, so each key's search first keeps what its own rows would allow (a
    # looser distance: never fewer hits), and the one FAR for the total decides below.
    # (An engine that counts before it measures may keep only what that many rows allow: `limit_for`.)
    def point_for(key_id: str, rows: int) -> operating_point.OperatingPoint:
        of_key = by_key[key_id]
        return operating_point.choose(
            len(of_key[0].bits), rows, photos=photos, codes=len(of_key), max_false=max_false, far=far, scheme=scheme
        )

    searches = {}
    for key_id in held:
        of_key = by_key[key_id]
        loosest = operating_point.choose(
            len(of_key[0].bits), 1, photos=photos, codes=len(of_key), far=operating_point.MAX_FAR, scheme=scheme
        ).distance
        searches[key_id] = store.near(
            scheme,
            key_id,
            len(of_key[0].bits),
            [c.packed for c in of_key],
            loosest,
            *window,
            sites=sites,
            limit_for=lambda n, k=key_id: point_for(k, n).distance,
        )
    total = sum(search.searched for search in searches.values())
    epochs, sightings = [], []
    for key_id, of_key in by_key.items():
        search = searches.get(key_id)
        if search is None:
            epochs.append(Epoch(key_id, [str(c) for c in of_key], None, rekeyed_from=rekeyed.get(key_id)))
            continue
        point = dataclasses.replace(point_for(key_id, total), rows=search.searched)  # one FAR, its own rows
        hits = [(i, d) for i, d in search.hits if d <= point.distance]
        by_id = {r.id: r for r in store.rows([i for i, _ in hits])}
        sightings += [Sighting(by_id[i], d) for i, d in hits if i in by_id]
        first, last = store.span_of(scheme, key_id, point.bits, *window, sites) if len(by_key) > 1 else (None, None)
        epochs.append(Epoch(key_id, [str(c) for c in of_key], point, first, last, rekeyed.get(key_id)))
    sightings.sort(key=lambda s: s.distance)  # stable: each search's own order among equals
    point = _whole(epochs, total)
    stride_ms = round(stride.total_seconds() * 1000)
    visits = _visits(sightings, stride_ms)
    seen = {s.row.id for s in sightings}
    bits_of = {k: len(of_key[0].bits) for k, of_key in by_key.items()}
    for visit in visits:
        around = store.around(
            visit.key_id, visit.site, visit.checkpoint, visit.first_ms - stride_ms, visit.last_ms + stride_ms
        )
        bits = bits_of[visit.key_id]
        rows = [r for r in around if r.id not in seen and r.bits == bits and r.scheme == scheme]
        link = operating_point.curve(bits, 1, scheme).distance_at(CONTACT_LINK_FAR)
        visit.contacts = _contacts(visit, rows, link, scheme)
        visit.flooding = _flooding(rows)
    return Trace(
        codes=[str(c) for c in codes],
        key_id=held[0],
        point=point,
        stride_ms=stride_ms,
        since_ms=since_ms,
        until_ms=until_ms,
        coverage=store.coverage(),
        retention=store.meta("retention"),
        unreadable=sum(search.unreadable for search in searches.values()),
        sightings=sightings,
        visits=visits,
        notes=store_notes(store),
        gaps=store.gaps(since_ms, until_ms, sites),
        sites=sites,
        epochs=epochs,
    )


def _nothing_held(store: Store, by_key: dict[str, list[facehash.FaceHash]], scheme: str) -> None:
    """No key id of the query has rows of its length and scheme: say why, as a person can act on it."""
    keys = sorted(store.keys())
    if len(by_key) == 1:
        key_id, of_key = next(iter(by_key.items()))
        if key_id not in keys:
            raise TraceError(
                f"this FaceHash was made with key {key_id}, but the database holds sightings of key(s) "
                f"{', '.join(keys) or 'none'}: FaceHashes of different keys cannot be linked (that is what a key "
                "change is for)"
            )
        raise TraceError(f"the database holds no {len(of_key[0].bits)}-bit {scheme} FaceHashes of key {key_id}")
    raise TraceError(
        f"the database holds no {scheme} sightings under any of the {len(by_key)} key ids of these FaceHashes "
        f"({', '.join(by_key)}); it holds key(s) {', '.join(keys) or 'none'}. Were they made with this deployment's "
        "chain, for this window?"
    )


def _whole(epochs: list[Epoch], total: int) -> operating_point.OperatingPoint:
    """The trace's operating point over every epoch searched: its rows, its FAR per row on average (so that
    far × rows is the expected false sightings of the whole trace), the least share of true sightings found.
    With one epoch, that epoch's own point."""
    searched = [e.point for e in epochs if e.point is not None]
    if len(searched) == 1:
        return searched[0]
    expected = sum(p.expected_false for p in searched)
    return dataclasses.replace(
        searched[0],
        rows=total,
        codes=sum(p.codes for p in searched),
        far=expected / total if total else searched[0].far,
        tar=min(p.tar for p in searched),
        distance=max(p.distance for p in searched),
        extrapolated=any(p.extrapolated for p in searched),
        capped=any(p.capped for p in searched),
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
    open_visits: dict[tuple[str, str, str], Visit] = {}
    for s in sorted(sightings, key=lambda s: (s.row.started_ms, s.row.id)):
        place = (s.row.site, s.row.checkpoint, s.row.key_id)  # a visit is of one epoch, as its contacts are
        visit = open_visits.get(place)
        if visit is None or s.row.started_ms - visit.last_ms > stride_ms:
            visit = Visit(s.row.site, s.row.checkpoint, [], key_id=s.row.key_id)
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
