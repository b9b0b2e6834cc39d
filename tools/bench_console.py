"""Benchmark of the operators' console (it prints numbers; it asserts nothing): the server time of the trace
page (POST /trace with a FaceHash, signed in), of one checkpoint's history over 14 days
(GET /checkpoints/{site}/{checkpoint}) and of the checkpoints page, at 10^5 and 10^6 stored person rows on
SQLite and PostgreSQL. Aims (issue 20): a trace at 10^6 within 2 s, a history page within 1 s.

    python tools/bench_console.py [--sizes 100000,1000000] [--backends sqlite,postgresql] [--postgres URL]
                                  [--lfw-cache build/lfw_dev_people_….npz]

Rows are loaded as tools/bench_trace.py loads them (its batches: lfw_dev's real FaceHashes then synthetic ones,
four persons per event, 50 checkpoints over 14 days; SQLite through the store's `add` then sealed, PostgreSQL by
COPY), with the units' status and health of tools/bench_history.py (offline and camera failing twice a day).
The console is the real app (edge.console.app.build_app) over that database, driven in-process through
Starlette's TestClient: a request's time is the app's own work plus a few hundred microseconds of client.
Each page is timed as the median of 3.
"""

from __future__ import annotations

import argparse
import datetime
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_history
import lfw
import servers
from bench_trace import KEY, Server, batches, fill

from edge.core import facehash
from edge.tracer import store

PASSWORD = "a benchmark's long enough password"
TRACE_FORM = {"case_id": "BENCH-1", "reason": "benchmark", "since": "15d", "stride": "30m"}


def console_client(url: str, folder: Path):
    """The console's tables beside the rows, a tracer account, and a TestClient signed in as that tracer."""
    from starlette.testclient import TestClient

    from edge.console import accounts
    from edge.console.app import ConsoleSettings, build_app
    from edge.console.audit import AuditKey
    from edge.console.db import ConsoleDb

    key_path = folder / f"audit-{time.monotonic_ns()}.key"
    key = AuditKey.generate(key_path)
    db = ConsoleDb.open(url, audit_key=key)
    try:
        with db.transaction() as tx:
            if accounts.user_in(tx, "bench") is None:
                accounts.add_user(tx, "bench", PASSWORD, "tracer", None, by="bench", address="bench")
    finally:
        db.close()
    client = TestClient(build_app(ConsoleSettings(db_url=url, audit_key=key_path)), base_url="http://127.0.0.1")
    login = client.get("/login").text
    token = re.search(r'name="csrf" value="([^"]*)"', login)[1]
    answer = client.post("/login", data={"name": "bench", "password": PASSWORD, "csrf": token})
    assert answer.status_code == 200, answer.text
    return client


def timed(request) -> tuple[float, object]:
    runs, answer = [], None
    for _ in range(3):
        started = time.perf_counter()
        answer = request()
        runs.append(time.perf_counter() - started)
        if answer.status_code != 200:
            raise SystemExit(
                f"{answer.request.method} {answer.request.url}: {answer.status_code}\n{answer.text[-2000:]}"
            )
    return statistics.median(runs), answer


def measure(url: str, folder: Path, code: str) -> dict:
    client = console_client(url, folder)
    with client:
        token = re.search(r'name="csrf" value="([^"]*)"', client.get("/trace").text)[1]
        trace_s, traced = timed(lambda: client.post("/trace", data=TRACE_FORM | {"facehashes": code, "csrf": token}))
        history_s, _ = timed(lambda: client.get("/checkpoints/bench/door-7?since=14d"))
        day_s, _ = timed(lambda: client.get("/checkpoints/bench/door-7?since=24h"))
        list_s, _ = timed(lambda: client.get("/checkpoints"))
    searched = re.search(r"Searched ([\d,]+) person rows", traced.text)
    return {
        "trace s": trace_s,
        "history 14 d s": history_s,
        "history 24 h s": day_s,
        "checkpoints s": list_s,
        "rows searched": searched[1] if searched else "?",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--postgres", metavar="URL", help="a running PostgreSQL server instead of a throwaway one")
    parser.add_argument("--lfw-cache", type=Path, help="lfw_dev's embeddings as tools/lfw.py caches them in build/")
    args = parser.parse_args()
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    data = lfw.people(cache=args.lfw_cache)
    hasher = facehash.FaceHasher(KEY, facehash.load_scheme())
    code = str(hasher.hash(data.vectors[1]))  # a real photo: its own row and the person's others are stored
    results = []
    for backend in args.backends.split(","):
        pg = None
        if backend == "postgresql":
            pg = Server(args.postgres) if args.postgres else servers.Postgres(fsync=True)
        folder = Path(tempfile.mkdtemp(prefix="bench-console-"))
        url = pg.new_database() if pg else str(folder / "sightings.sqlite")
        store.open_store(url).close()
        bench_history.reports(url)
        rng, have = np.random.default_rng(1), 0
        try:
            for size in sizes:
                started = time.perf_counter()
                fill(url, pg, batches(data, hasher, size, have, rng))
                have = size
                print(f"{backend}: filled to {size:,} rows in {time.perf_counter() - started:.0f} s", flush=True)
                results.append({"backend": backend, "size": size, **measure(url, folder, code)})
                print(results[-1], flush=True)
        finally:
            if pg:
                pg.stop()
    print("\n| backend | person rows | POST /trace (s) | history 14 d (s) | history 24 h (s) | /checkpoints (s) |")
    print("|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['backend']} | {r['size']:,} | {r['trace s']:.2f} | {r['history 14 d s']:.3f} | "
            f"{r['history 24 h s']:.3f} | {r['checkpoints s']:.3f} |"
        )
    at = datetime.datetime.now(datetime.UTC)
    print(f"(median of 3; aims: trace ≤ 2 s at 10^6, history ≤ 1 s; {at:%Y-%m-%d %H:%M} UTC)")


if __name__ == "__main__":
    main()
