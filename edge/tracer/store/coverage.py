"""What the units say of themselves, as a store keeps it: `status` transitions (online, offline, the last
will) and, of each health report, only whether the camera works and whether the clock is synchronised.
From them: the periods when a checkpoint could not see anyone (gaps), each checkpoint's state now, and a
checkpoint's history counted per time bucket. "No sightings" then never hides "the camera was off".

A store of schema 3 (read by a trace that does not upgrade) has no such tables: it has no gaps to tell.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edge.tracer.store.protocol import Store

MAX_BUCKETS = 10_000  # a history is a chart: more buckets than this is a mistake, not a request
UNTRUSTED_CLOCK = "clock IS NOT NULL AND clock NOT IN ('synchronized', 'restamped')"  # as Row.trusted_time
# kind of gap: (table, column, the value that opens it)
KINDS = {"offline": ("statuses", "state", "offline"), "camera": ("health", "camera", "failing")}
KINDS["clock"] = ("health", "clock", "unsynchronized")


@dataclass(frozen=True)
class UnitReport:
    """One status or health message of a unit, reduced to what a store keeps of it."""

    unit: tuple[str, str, str]
    kind: str  # "status" | "health"
    at_ms: int
    received_ms: int
    state: str = ""  # status: online | offline
    camera: str = ""  # health: ok | failing
    clock: str = ""  # health: synchronized | unsynchronized | unknown

    @property
    def values(self) -> tuple[str, ...]:
        return (self.state,) if self.kind == "status" else (self.camera, self.clock)


@dataclass(frozen=True)
class Gap:
    site: str
    checkpoint: str
    device: str
    kind: str  # "offline" | "camera" | "clock"
    from_ms: int
    to_ms: int | None  # None: still so at the newest report


@dataclass(frozen=True)
class Checkpoint:
    site: str
    checkpoint: str
    devices: tuple[str, ...]
    last_event_ms: int | None
    state: str  # "online" (a unit is) | "offline" (every unit that said is) | "unknown" (none said)
    state_since_ms: int | None
    camera: str | None  # "failing" if a unit's is, "ok", or None (no health report)
    clock: str | None  # the worst of: "unsynchronized", "unknown", "synchronized"; None (no health report)


@dataclass(frozen=True)
class Bucket:
    start_ms: int
    events: int
    persons: int
    faces: int
    unsynced: int  # events whose unit's clock was not synchronised


def write(store: Store, report: UnitReport) -> bool:
    """Keep the report if it changes what is stored of its unit (a transition) and is not older than it."""
    table, columns = ("statuses", ("state",)) if report.kind == "status" else ("health", ("camera", "clock"))
    last = store.execute(
        f"SELECT at_ms, {', '.join(columns)} FROM {table} WHERE site = ? AND checkpoint = ? AND device = ? "
        "ORDER BY at_ms DESC, id DESC LIMIT 1",
        report.unit,
    ).fetchone()
    if last is not None and (report.at_ms < last[0] or tuple(last[1:]) == report.values):
        return False
    names = ("site", "checkpoint", "device", "at_ms", *columns, "received_ms")
    store.execute(
        f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
        (*report.unit, report.at_ms, *report.values, report.received_ms),
    )
    return True


def forget_before(store: Store, cutoff_ms: int) -> None:
    """Reports made before the cutoff go, but for each unit's newest: without it its state now is unknown."""
    for table in ("statuses", "health"):
        store.execute(
            f"DELETE FROM {table} WHERE at_ms < ? AND at_ms < (SELECT MAX(t.at_ms) FROM {table} t "
            f"WHERE t.site = {table}.site AND t.checkpoint = {table}.checkpoint AND t.device = {table}.device)",
            (cutoff_ms,),
        )


def scope(sites: frozenset[str] | None, place: tuple[str, str] | None) -> tuple[str, list]:
    where, params = ["1 = 1"], []
    if sites is not None:
        where.append(f"site IN ({', '.join('?' * len(sites))})" if sites else "1 = 0")
        params += sorted(sites)
    if place is not None:
        where.append("site = ? AND checkpoint = ?")
        params += place
    return " AND ".join(where), params


def latest(table: str, columns: str, where: str, before: str = "") -> str:
    """SQL for rows of `table` in `where` that are their unit's newest (before the `before` mark, if given)."""
    limit = " AND t.at_ms < ?" if before else ""
    return (
        f"SELECT site, checkpoint, device, at_ms, {columns} FROM {table} s WHERE {where} AND s.at_ms = "
        f"(SELECT MAX(t.at_ms) FROM {table} t WHERE t.site = s.site AND t.checkpoint = s.checkpoint "
        f"AND t.device = s.device{limit})"
    )


def gaps(
    store: Store, since_ms: int, until_ms: int, sites: frozenset[str] | None, place: tuple[str, str] | None
) -> list[Gap]:
    tables = store.tables()
    where, params = scope(sites, place)
    found: list[Gap] = []
    for kind, (table, column, bad) in KINDS.items():
        if table not in tables:
            continue
        # each unit's state as the window opens (its newest report before it), then every later report
        rows = store.execute(
            f"SELECT site, checkpoint, device, at_ms, {column} FROM ("
            f"{latest(table, column + ', id', where, before='?')} UNION ALL "
            f"SELECT site, checkpoint, device, at_ms, {column}, id FROM {table} WHERE {where} AND at_ms >= ?"
            ") AS r ORDER BY site, checkpoint, device, at_ms, id",
            [*params, since_ms, *params, since_ms],
        ).fetchall()
        opened: dict[tuple[str, str, str], int] = {}
        for site, checkpoint, device, at_ms, value in rows:
            unit = (site, checkpoint, device)
            if value == bad:
                opened.setdefault(unit, at_ms)
            elif unit in opened:
                found.append(Gap(*unit, kind, opened.pop(unit), at_ms))
        found += [Gap(*unit, kind, start, None) for unit, start in opened.items()]
    inside = [g for g in found if g.from_ms <= until_ms and (g.to_ms is None or g.to_ms >= since_ms)]
    return sorted(inside, key=lambda g: (g.site, g.checkpoint, g.device, g.from_ms, g.kind))


def checkpoints(store: Store, sites: frozenset[str] | None) -> list[Checkpoint]:
    tables = store.tables()
    where, params = scope(sites, None)
    devices: dict[tuple[str, str], set[str]] = {}
    last_event: dict[tuple[str, str], int] = {}
    for site, checkpoint, device, newest in store.execute(
        f"SELECT site, checkpoint, device, MAX(started_ms) FROM events WHERE {where} GROUP BY site, checkpoint, device",
        params,
    ).fetchall():
        devices.setdefault((site, checkpoint), set()).add(device)
        last_event[(site, checkpoint)] = max(newest, last_event.get((site, checkpoint), newest))
    states: dict[tuple[str, str], list[tuple[int, str]]] = {}
    health: dict[tuple[str, str], list[tuple[str, str]]] = {}
    if "statuses" in tables:
        now = store.execute(latest("statuses", "state, id", where) + " ORDER BY id", params).fetchall()
        for site, checkpoint, device, at_ms, state, _ in _newest_per_unit(now):
            devices.setdefault((site, checkpoint), set()).add(device)
            states.setdefault((site, checkpoint), []).append((at_ms, state))
    if "health" in tables:
        now = store.execute(latest("health", "camera, clock, id", where) + " ORDER BY id", params).fetchall()
        for site, checkpoint, device, _, camera, clock, _ in _newest_per_unit(now):
            devices.setdefault((site, checkpoint), set()).add(device)
            health.setdefault((site, checkpoint), []).append((camera, clock))
    made = []
    for place in sorted(devices):
        said = states.get(place, [])
        online = [at for at, state in said if state == "online"]
        offline = [at for at, state in said if state == "offline"]
        state, since = ("online", min(online)) if online else ("unknown", None)
        if not online and offline:
            state, since = "offline", max(offline)
        cameras = {camera for camera, _ in health.get(place, [])}
        clocks = {clock for _, clock in health.get(place, [])}
        made.append(
            Checkpoint(
                site=place[0],
                checkpoint=place[1],
                devices=tuple(sorted(devices[place])),
                last_event_ms=last_event.get(place),
                state=state,
                state_since_ms=since,
                camera=_worst(cameras, ("failing", "ok")),
                clock=_worst(clocks, ("unsynchronized", "unknown", "synchronized")),
            )
        )
    return made


def _newest_per_unit(rows: list[tuple]) -> list[tuple]:
    """One row per unit: of rows at the same newest time, the last stored (rows come in id order)."""
    return list({row[:3]: row for row in rows}.values())


def _worst(values: set[str], order: tuple[str, ...]) -> str | None:
    return next((value for value in order if value in values), None)


def activity(store: Store, site: str, checkpoint: str, since_ms: int, until_ms: int, bucket_ms: int) -> list[Bucket]:
    if bucket_ms <= 0 or until_ms <= since_ms:
        raise ValueError("a history needs a positive bucket and a window that ends after it starts")
    count = -(-(until_ms - since_ms) // bucket_ms)
    if count > MAX_BUCKETS:
        raise ValueError(f"{count:,} buckets: a history holds at most {MAX_BUCKETS:,} (choose a longer bucket)")
    faces = "faces" if "faces" in store.columns("events") else store.json_int("body", "faces")  # schema 3
    bucket = "(started_ms - CAST(? AS BIGINT)) / CAST(? AS BIGINT)"
    window = "site = ? AND checkpoint = ? AND started_ms >= ? AND started_ms < ?"
    params = (since_ms, bucket_ms, site, checkpoint, since_ms, until_ms)
    events = store.execute(
        f"SELECT {bucket}, COUNT(*), SUM({faces}), SUM(CASE WHEN {UNTRUSTED_CLOCK} THEN 1 ELSE 0 END) "
        f"FROM events WHERE {window} GROUP BY 1",
        params,
    ).fetchall()
    persons = store.execute(f"SELECT {bucket}, COUNT(*) FROM persons WHERE {window} GROUP BY 1", params).fetchall()
    counted = {int(b): (int(n), int(f or 0), int(u or 0)) for b, n, f, u in events}
    people = {int(b): int(n) for b, n in persons}
    return [
        Bucket(since_ms + i * bucket_ms, counted.get(i, (0,))[0], people.get(i, 0), *counted.get(i, (0, 0, 0))[1:])
        for i in range(count)
    ]
