"""`traceon-edge held`: what the per-unit limits set aside, and an operator's decision on it.

`list` shows a line per unit and limit. `release` checks each chosen event again as a collector checks a
new one (the schema, the unit, the times, the retention; not the limits: releasing is the operator's
decision to override them) and stores it; one that fails stays held, with its reason. `drop` deletes.
"""

from __future__ import annotations

import time

from edge.core.errors import TraceError
from edge.core.spans import parse_span, when
from edge.tracer import intake
from edge.tracer.store import CONFLICT, REPEATED, STORED, Held, Store, open_store


def command(action: str, url: str, unit_text: str | None, ids: list[int] | None, out) -> int:
    unit = parse_unit(unit_text) if unit_text else None
    if action != "list" and unit is None and ids is None:
        raise TraceError(f"say which events to {action}: --unit SITE/CHECKPOINT/DEVICE or --id N (see `held list`)")
    store = open_store(url, upgrade=True, create=False)
    try:
        if action == "list":
            out.write(listing(store, unit))
            return 0
        chosen = store.held(unit, ids)
        if not chosen:
            out.write("no held event matches\n")
            return 0
        if action == "drop":
            with store.transaction():
                dropped = store.drop_held([h.id for h in chosen])
            out.write(f"dropped {dropped} held event(s)\n")
            return 0
        return release(store, chosen, out)
    finally:
        store.close()


def parse_unit(text: str) -> tuple[str, str, str]:
    parts = text.split("/")
    if len(parts) != 3 or not all(parts):
        raise TraceError(f"--unit {text!r} is not SITE/CHECKPOINT/DEVICE (e.g. campus/door/unit-1)")
    return parts[0], parts[1], parts[2]


def listing(store: Store, unit: tuple[str, str, str] | None) -> str:
    lines = [f"{'unit':<40} {'limit':<8} {'events':>7} {'persons':>8} {'kB':>8}  received (UTC)"]
    for site, checkpoint, device, kind, count, persons, size, first, last in store.held_summary():
        if unit is not None and (site, checkpoint, device) != unit:
            continue
        name = f"{site}/{checkpoint}/{device}"
        lines.append(
            f"{name:<40} {kind:<8} {count:>7,} {persons or 0:>8,} {(size or 0) / 1024:>8,.0f}  "
            f"{when(first)} – {when(last)}"
        )
    if len(lines) == 1:
        return "no event is held: every unit kept within its limits\n"
    lines.append("release (check again and store) or drop: traceon-edge held release|drop --db URL --unit …|--id …")
    return "\n".join(lines) + "\n"


def release(store: Store, chosen: list[Held], out) -> int:
    retention = store.meta("retention")
    oldest = _oldest_ms(retention)
    events, failed = [], 0
    for held in chosen:
        try:
            event = intake.accept(held.unit, intake.parse(held.payload.encode()))
            if oldest is not None and event.started_ms < oldest:
                raise intake.Refused(f"older than the retention period ({retention})")
            events.append((held, event))
        except intake.Refused as e:
            failed += 1
            out.write(f"held #{held.id} from {held.unit_text} stays held: {e}\n")
    with store.transaction():
        outcomes = [store.insert(event, round(time.time() * 1000)) for _, event in events]
        store.drop_held([held.id for held, _ in events])
    out.write(
        f"released {len(events)} held event(s): {outcomes.count(STORED)} stored, "
        f"{outcomes.count(REPEATED)} already stored, {outcomes.count(CONFLICT)} reused a stored event's id"
        + (f"; {failed} failed the checks and stay held (drop them with --id)" if failed else "")
        + "\n"
    )
    return 1 if failed else 0


def _oldest_ms(retention: str | None) -> int | None:
    try:
        return round((time.time() - parse_span(retention).total_seconds()) * 1000) if retention else None
    except ValueError:
        return None
