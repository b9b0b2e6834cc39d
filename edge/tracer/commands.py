"""`traceon-edge collect`, `trace` and `upgrade-db`: the contact tracer's commands (no vision imported)."""

from __future__ import annotations

import sys
from pathlib import Path

from edge.core import broker
from edge.tracer import report, store
from edge.tracer.collect import Collector, Options
from edge.tracer.trace import parse_span, run


def collect(args) -> int:
    retention, expiry = parse_span(args.retention), parse_span(args.session_expiry)
    options = Options(
        db_url=args.db,
        share=args.share,
        client_id=args.client_id,
        session_expiry_s=int(expiry.total_seconds()),
        retention_s=int(retention.total_seconds()),
        retention_text=args.retention,
    )
    return Collector(broker.settings(args), options).run()


def trace(args, out=sys.stdout) -> int:
    db = store.open_store(args.db, create=False)
    try:
        result = run(
            db,
            args.facehash,
            parse_span(args.stride),
            parse_span(args.since),
            photos=args.query_photos,
            max_false=args.max_false,
            far=args.far,
        )
    finally:
        db.close()
    text = report.FORMATS[args.format](result)
    if args.output:
        Path(args.output).write_text(text)
        print(f"wrote {args.output}: {len(result.sightings)} sighting(s) in {len(result.visits)} visit(s)")
    else:
        out.write(text)
    return 0


def upgrade_db(args) -> int:
    db = store.open_store(args.db, upgrade=True)
    try:
        events, persons = db.counts()
        skipped = db.meta("unreadable_rows", "0")
    finally:
        db.close()
    print(f"{store.redacted(args.db)}: schema {store.SCHEMA_VERSION}, {events} events, {persons} person rows "
          f"({skipped} unreadable row(s) of an older version skipped)")  # fmt: skip
    return 0
