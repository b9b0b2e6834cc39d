"""`traceon-edge collect`, `held`, `trace`, `upgrade-db` and `forget-keys`: the contact tracer's commands.

Registering them imports only the parsers' needs: every `traceon-edge` process, the unit's daemon among
them, builds this parser, so the store, NumPy and the report load only when a tracer command runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edge.core import broker
from edge.core.errors import ConfigError, SpanError
from edge.core.options import positive_int, positive_number
from edge.core.spans import parse_span
from edge.tracer.limits import Limits


def register(commands: argparse._SubParsersAction) -> None:
    collect = commands.add_parser(
        "collect",
        help="store the units' events, losing none (contact tracers)",
        description="Subscribe to the units' events and store them once per event id. The collector keeps a "
        "persistent session at the broker under a fixed client id, so events published while it is down wait "
        "there, and acknowledges each event only after it is stored. Every message that is not a valid event "
        "is refused with one counted line.",
    )
    broker.add_options(collect)
    collect.add_argument("--db", required=True, metavar="URL", help="a SQLite file, sqlite:///path or postgresql://…")
    collect.add_argument("--share", metavar="GROUP", help="join an MQTT 5 shared subscription group")
    collect.add_argument(
        "--client-id", metavar="ID", help="this collector's fixed identity (default traceon-collect-<host>[-<GROUP>])"
    )
    collect.add_argument(
        "--session-expiry",
        default="7d",
        metavar="SPAN",
        help="how long the broker keeps events for this collector while it is away (default 7d)",
    )
    collect.add_argument(
        "--retention",
        default="21d",
        metavar="SPAN",
        help="delete events older than this (default 21d: a tracing window of 14 days plus a week to act on it)",
    )
    collect.add_argument(
        "--key-chain",
        type=Path,
        metavar="FILE",
        help="the tracer's own copy of the deployment's key chain: retention moves it forward with the events, so "
        "sightings older than the retention can no longer be tested from a photo, in any copy of the store",
    )

    limits = Limits()
    collect.add_argument(
        "--max-persons",
        type=positive_int,
        default=limits.max_persons,
        metavar="N",
        help=f"set aside events of more persons than one burst can hold (default {limits.max_persons})",
    )
    collect.add_argument(
        "--unit-spacing",
        type=positive_number,
        default=limits.spacing_s,
        metavar="SECONDS",
        help=f"set aside a unit's events beyond one per this many seconds of its clock, after a burst of "
        f"{limits.bucket} (default {limits.spacing_s:g})",
    )
    collect.add_argument(
        "--unit-rows-per-day",
        type=positive_int,
        default=limits.rows_per_day,
        metavar="N",
        help=f"set aside a unit's events beyond this many person rows a day (default {limits.rows_per_day:,})",
    )
    collect.add_argument(
        "--unit-held-mb",
        type=positive_int,
        default=limits.held_mb_per_unit,
        metavar="MB",
        help=f"keep at most this much of one unit's set-aside events; beyond it they are dropped, counted "
        f"(default {limits.held_mb_per_unit})",
    )
    collect.set_defaults(handler=collect_events)

    held = commands.add_parser(
        "held",
        help="events a collector set aside (a unit over its limits): list, release or drop them",
        description="A collector sets aside, rather than stores, the events of a unit that sends more than a "
        "unit can: too many persons in one event, events closer together than its bursts, or more rows in a day "
        "than a busy doorway makes. They stay out of every trace until released (checked again and stored) or "
        "dropped here.",
    )
    held.add_argument("action", nargs="?", choices=("list", "release", "drop"), default="list")
    held.add_argument("--db", required=True, metavar="URL", help="as for collect")
    held.add_argument("--unit", metavar="SITE/CHECKPOINT/DEVICE", help="only this unit's events")
    held.add_argument("--id", type=positive_int, nargs="+", metavar="N", help="only these (ids from `held list`)")
    held.set_defaults(handler=held_events)

    trace = commands.add_parser(
        "trace",
        help="every sighting of one person and who was there at the time",
        description="Sightings of a person (rows within the Hamming distance that keeps the expected false "
        "sightings over the rows searched within --max-false), ranked by distance, and each other person seen "
        "at the same checkpoint within the stride, one line per contact per visit.",
    )
    trace.add_argument("facehash", nargs="+", metavar="FACEHASH", help="one, or several of the same person")
    trace.add_argument("--db", required=True, metavar="URL", help="as for collect")
    trace.add_argument("--stride", default="30m", help="co-presence window before and after (e.g. 30m)")
    trace.add_argument("--since", default="14d", help="how far back to look (e.g. 14d)")
    trace.add_argument(
        "--max-false",
        type=positive_number,
        default=1.0,
        metavar="N",
        help="expected false sightings over the rows searched (default 1)",
    )
    trace.add_argument("--far", type=positive_number, metavar="RATE", help="false-accept rate per row instead")
    trace.add_argument(
        "--query-photos",
        type=int,
        choices=range(1, 5),
        default=1,
        metavar="N",
        help="the FaceHash was made from N photos (embed --one-person); 1 to 4",
    )
    trace.add_argument(
        "--site",
        action="append",
        metavar="SITE",
        help="search, and list contacts and gaps, only at this site (repeat for more; default every site)",
    )
    trace.add_argument(
        "--key-chain",
        type=Path,
        metavar="FILE",
        help="the tracer's key chain: also search every other epoch of the window, the FaceHash re-keyed into each "
        "(trace a contact, whose FaceHash belongs to one epoch, over the whole window)",
    )
    trace.add_argument("--format", choices=("table", "csv", "json", "html"), default="table")
    trace.add_argument("--output", metavar="FILE", help="write the report here (e.g. trace.html)")

    trace.set_defaults(handler=trace_person)

    upgrade = commands.add_parser(
        "upgrade-db",
        help="bring a sightings database written by an older traceon-edge to this version's format",
        description="Upgrade a sightings database in place, in one transaction. Old events are checked as new "
        "ones are; those that fail are skipped and counted.",
    )
    upgrade.add_argument("--db", required=True, metavar="URL")
    upgrade.set_defaults(handler=upgrade_db)

    forget = commands.add_parser(
        "forget-keys",
        help="move the tracer's key chain forward to the oldest epoch its retention keeps (erasing older ones)",
        description="What a running `collect --key-chain` does each hour, for a tracer without a running "
        "collector (e.g. from cron): move the chain file forward to the epoch of (now − retention), overwriting "
        "the key it held. Sightings of earlier epochs can then no longer be tested from any photo, in this store "
        "or in any copy of it. It needs no database.",
    )
    forget.add_argument("--key-chain", type=Path, required=True, metavar="FILE", help="the tracer's key chain")
    forget.add_argument(
        "--retention", default="21d", metavar="SPAN", help="as the collector's --retention (default 21d)"
    )
    forget.set_defaults(handler=forget_keys)


def option_span(args, name: str):
    """The span an option gives; a wrong one ends the command with exit 78, naming the option."""
    try:
        return parse_span(getattr(args, name))
    except SpanError as e:
        raise ConfigError(f"--{name.replace('_', '-')}: {e}") from None


def collect_events(args) -> int:
    from edge.tracer import key_chain
    from edge.tracer.collect import Collector, Options

    retention, expiry = option_span(args, "retention"), option_span(args, "session_expiry")
    if args.key_chain is not None:
        key_chain.load(args.key_chain)  # a plain key, a missing or readable file: said at start, nothing run
    options = Options(
        db_url=args.db,
        share=args.share,
        client_id=args.client_id,
        session_expiry_s=int(expiry.total_seconds()),
        retention_s=int(retention.total_seconds()),
        retention_text=args.retention,
        limits=Limits(
            max_persons=args.max_persons,
            spacing_s=args.unit_spacing,
            rows_per_day=args.unit_rows_per_day,
            held_mb_per_unit=args.unit_held_mb,
        ),
        key_chain=args.key_chain,
    )
    return Collector(broker.from_options(args), options).run()


def trace_person(args, out=sys.stdout) -> int:
    from edge.tracer import report, store
    from edge.tracer.trace import run

    stride, since = option_span(args, "stride"), option_span(args, "since")
    codes, rekeyed = args.facehash, None
    if args.key_chain is not None:
        from edge.tracer import key_chain

        codes, rekeyed = key_chain.over_window(codes, key_chain.load(args.key_chain), since.total_seconds())
    db = store.open_store(args.db, create=False, read_only=True)
    try:
        result = run(
            db,
            codes,
            stride,
            since,
            photos=args.query_photos,
            max_false=args.max_false,
            far=args.far,
            sites=frozenset(args.site) if args.site else None,
            rekeyed=rekeyed,
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


def held_events(args, out=sys.stdout) -> int:
    from edge.tracer import held

    return held.command(args.action, args.db, args.unit, args.id, out)


def forget_keys(args, out=sys.stdout) -> int:
    from edge.tracer import key_chain

    retention = option_span(args, "retention")
    before, after = key_chain.forget(args.key_chain, retention.total_seconds())
    print(key_chain.said(args.key_chain, before, after), file=out)
    return 0


def upgrade_db(args) -> int:
    from edge.tracer import store

    db = store.open_store(args.db, upgrade=True)
    try:
        events, persons = db.counts()
        skipped = db.meta("unreadable_rows", "0")
    finally:
        db.close()
    print(
        f"{store.redacted(args.db)}: schema {store.SCHEMA_VERSION}, {events} events, {persons} person rows "
        f"({skipped} unreadable row(s) of an older version skipped)"
    )
    return 0
