"""Benchmark of the tracer's side (it prints numbers; it asserts nothing): trace at 10^5 … 10^7 stored person
rows on SQLite and PostgreSQL, and collect throughput on both.

    python tools/bench_trace.py [--sizes 100000,1000000,10000000] [--backends sqlite,postgresql] [--events 5000]
                                [--scheme fh1,fh2] [--postgres postgresql://user@host:port/db]

Rows: the 3,409 lfw_dev photos' FaceHashes (real rows) plus synthetic ones: embeddings drawn from a
Gaussian with lfw_dev's own mean and covariance, hashed under the same key, so that the rows crowd the
query as real faces would. Each scheme (--scheme) gets a database of its own, of the same embeddings
hashed in that scheme (fh2 events of schema 3, fh1 of schema 1). Four persons per event, 50 checkpoints,
times spread over 14 days. SQLite is filled through the store's own `add` (then sealed, as a collector
does); PostgreSQL by COPY (a bulk loader, not the collector, but of the columns and values the store's
insert writes: fh2's filter bits too). Each size: the
whole `traceon-edge trace` command (wall time and peak RSS, median of 3) and the search inside it
(`trace.run`, median of 3), over every row (--since 30d).
Collect: a mosquitto with config/mosquitto-collect.conf, the real collector, and one publisher sending
--events events at QoS 1 as fast as the broker takes them; events stored per second, first publish to last commit.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import lfw
import servers

from edge.core import events, facehash, schemes
from edge.tracer import intake, store, trace

KEY = facehash.Key(b"traceon-edge trace benchmark key")
NOW = time.time()
PER_EVENT = 4
CHECKPOINTS = 50
EXE = Path(sys.executable).parent / "traceon-edge"


def synthetic(data: lfw.People, count: int, rng: np.random.Generator) -> np.ndarray:
    mean = data.vectors.mean(0)
    cov = np.cov(data.vectors, rowvar=False)
    v = rng.multivariate_normal(mean, cov, count, method="cholesky")
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def texts(key_id: str, packed: np.ndarray, scheme: str = "fh1") -> list[str]:
    return [f"{scheme}:{key_id}:" + base64.b32encode(row.tobytes()).decode().rstrip("=").lower() for row in packed]


def packed_codes(hasher, vectors: np.ndarray) -> np.ndarray:
    """The codes as a store keeps them (N × bytes): fh1's bits packed, fh2's signed bytes as they are."""
    codes = hasher.codes(vectors)
    return np.packbits(codes, axis=1) if hasher.scheme == "fh1" else codes.view(np.uint8)


def batches(data: lfw.People, hasher, total: int, start: int, rng: np.random.Generator):
    """Events (as the store's Event) for rows start … total-1; the real photos come first."""
    chunk = 100_000
    for first in range(start, total, chunk):
        n = min(chunk, total - first)
        real = data.vectors[first : first + n] if first < len(data.vectors) else np.empty((0, 128))
        vectors = np.concatenate([real, synthetic(data, n - len(real), rng)]) if n > len(real) else real
        packed = packed_codes(hasher, vectors)
        codes = texts(KEY.id, packed, hasher.scheme)
        made = []
        for i in range(0, n, PER_EVENT):
            at = NOW - rng.uniform(0, 14 * 86400)
            persons = [
                {"facehash": c, "frames": 3, "quality": {"size": 120, "frontalness": 0.9, "sharpness": 80.0}}
                for c in codes[i : i + PER_EVENT]
            ]
            body = {
                "schema_version": 1,
                "event_id": str(uuid.uuid4()),
                "site": "bench",
                "checkpoint": f"door-{int(rng.integers(CHECKPOINTS))}",
                "device": "unit-1",
                "trigger": "pir",
                "started_at": events.utc(at),
                "ended_at": events.utc(at + 1),
                "frames": 10,
                "faces": len(persons),
                "persons": persons,
                "model": "dlib_resnet_v1_int8@b5208826d4c0",
                "key_id": KEY.id,
                "software": "traceon-edge 0.1.0",
            }
            if hasher.scheme != "fh1":
                body |= {"schema_version": 3, "clock": "synchronized", "scheme": hasher.scheme}
            made.append(as_event(body, round(at * 1000), packed[i : i + PER_EVENT]))
        yield made


def as_event(body: dict, at_ms: int, packed: np.ndarray) -> intake.Event:
    """What intake.check would make of the body, without checking it again (the bench made it valid)."""
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    codes = tuple(bytes(r) for r in packed)
    scheme, clock = body.get("scheme", "fh1"), body.get("clock")
    return intake.Event(
        body, text, "bench", body["checkpoint"], "unit-1", at_ms, at_ms + 1000, KEY.id, 1024, codes, clock, scheme
    )


def fill_sqlite(url: str, made: list) -> None:
    db = store.open_store(url)
    db.add(made)
    db.close()


def fill(url: str, pg, made_batches) -> None:
    """Load every batch, then settle the store as it is when traced: PostgreSQL's planner statistics
    (VACUUM ANALYZE), SQLite's codes sealed into segments (as a running collector does every few seconds)."""
    for made in made_batches:
        (fill_postgres if pg else fill_sqlite)(url, made)
    if pg:
        import psycopg

        with psycopg.connect(url, autocommit=True) as raw:
            raw.execute("VACUUM ANALYZE")
    else:
        db = store.open_store(url)
        db.maintain()
        db.close()


def fill_postgres(url: str, made: list) -> None:
    """COPY, for speed, of the very columns and values the store's own insert writes (received when it
    started): a column the store gains reaches the benchmark too, instead of breaking it."""
    db = store.open_store(url)
    try:
        with db.db.cursor() as cursor:
            with cursor.copy(f"COPY events ({', '.join(store.EVENT_COLUMNS)}) FROM STDIN") as copy:
                for e in made:
                    copy.write_row(db.event_values(e, e.started_ms))
            with cursor.copy(f"COPY persons ({', '.join(db.person_columns())}) FROM STDIN") as copy:
                for e in made:
                    for row in db.person_values(e):
                        copy.write_row(row)
        db.db.commit()
    finally:
        db.close()


class Server:
    """A running PostgreSQL server (--postgres): the benchmark makes its databases there and leaves it running."""

    def __init__(self, url: str):
        self.url = url

    def new_database(self) -> str:
        import psycopg

        name = f"bench_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url, autocommit=True) as db:
            db.execute(f"CREATE DATABASE {name}")
        return urllib.parse.urlsplit(self.url)._replace(path=f"/{name}").geturl()

    def stop(self) -> None:
        pass


# Started from a small interpreter, so that the peak RSS is the command's own, not this process's
# memory that a fork would copy (ru_maxrss counts it until the exec).
LAUNCH = """import os, sys, time
started = time.perf_counter()
pid = os.posix_spawn(sys.argv[1], sys.argv[1:], os.environ)
_, status, usage = os.wait4(pid, 0)
print(time.perf_counter() - started, usage.ru_maxrss / 1024, status)"""


def run_trace_command(url: str, code: str) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one `traceon-edge trace` process."""
    command = [sys.executable, "-c", LAUNCH, str(EXE), "trace", code, "--db", url, "--since", "30d", "--format", "json"]
    said = subprocess.run(command, capture_output=True, text=True, check=True).stdout.split()
    wall, rss, status = float(said[-3]), float(said[-2]), int(said[-1])
    if status:
        raise SystemExit(f"trace failed with status {status}")
    return wall, rss


def measure(url: str, code: str) -> dict:
    db = store.open_store(url)
    inside, searched = [], 0
    for _ in range(3):
        started = time.perf_counter()
        result = trace.run(db, [code], datetime.timedelta(minutes=30), datetime.timedelta(days=30))
        inside.append(time.perf_counter() - started)
        searched = result.point.rows
    db.close()
    runs = [run_trace_command(url, code) for _ in range(3)]
    return {
        "rows": searched,
        "trace.run s": statistics.median(inside),
        "command s": statistics.median(r[0] for r in runs),
        "peak RSS MB": max(r[1] for r in runs),
        "sightings": len(result.sightings),
        "threshold": result.point.within,
    }


def collect_throughput(url: str, count: int, data: lfw.People, hasher) -> float:
    import paho.mqtt.client as mqtt

    folder = Path(tempfile.mkdtemp(prefix="bench-collect-"))
    broker = servers.Broker(folder)
    broker.start()
    log = folder / "collect.log"
    with open(log, "w") as said:
        collector = subprocess.Popen(
            [EXE, "collect", "--broker", f"127.0.0.1:{broker.port}", "--db", url, "--client-id", "bench"], stderr=said
        )
    try:
        while "collecting" not in log.read_text():
            time.sleep(0.05)
        start = len(data.vectors)
        made = next(batches(data, hasher, start + count * PER_EVENT, start, np.random.default_rng(9)))
        sender = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        sender.max_inflight_messages_set(200)
        sender.connect("127.0.0.1", broker.port)
        sender.loop_start()
        started = time.perf_counter()
        pending = [sender.publish(f"traceon/bench/{e.checkpoint}/unit-1/events", e.text, qos=1) for e in made]
        for info in pending:
            info.wait_for_publish(60)
        db = store.open_store(url)
        while db.counts()[0] < count:
            if collector.poll() is not None:
                raise SystemExit(f"the collector stopped: {log.read_text()[-2000:]}")
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
        db.close()
        print(log.read_text().strip().splitlines()[-1], flush=True)
        sender.disconnect()
        sender.loop_stop()
    finally:
        collector.terminate()
        collector.wait(30)
        broker.stop()
    return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100000,1000000,10000000")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--events", type=int, default=5000, help="events for the collect throughput")
    parser.add_argument("--scheme", default="fh1,fh2", help="FaceHash schemes, each in a database of its own")
    parser.add_argument(
        "--postgres",
        metavar="URL",
        help="a running PostgreSQL server (a postgresql:// URL of any database on it) instead of a throwaway one; "
        "the benchmark makes its databases there",
    )
    parser.add_argument(
        "--people", type=int, metavar="N", help="only the N lfw_dev people with the most photos (a quick run)"
    )
    args = parser.parse_args()
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    data = lfw.people(most=args.people)
    model = facehash.load_scheme()
    hashers = [schemes.hasher(KEY, model, name) for name in args.scheme.split(",")]
    print(f"machine: {os.cpu_count()} cores; query: the FaceHash of {data.paths[1].name}", flush=True)
    results = []
    for backend in args.backends.split(","):
        pg = None
        if backend == "postgresql":
            pg = Server(args.postgres) if args.postgres else servers.Postgres(fsync=True)
        try:
            for hasher in hashers:
                results += bench_one(backend, pg, hasher, data, sizes, args.events)
        finally:
            if pg:
                pg.stop()
    head = "| backend | scheme | person rows | trace command (s) | search in trace.run (s) | peak RSS (MB) |"
    print(f"\n{head} sightings |\n|---|---|---|---|---|---|---|")
    for r in results:
        if "size" in r:
            print(
                f"| {r['backend']} | {r['scheme']} | {r['rows']:,} | {r['command s']:.2f} | {r['trace.run s']:.2f} | "
                f"{r['peak RSS MB']:.0f} | {r['sightings']} ({r['threshold']}) |"
            )
    for r in results:
        if "collect events/s" in r:
            print(f"collect {r['scheme']} into {r['backend']}: {r['collect events/s']:,} events stored per second")


def bench_one(backend: str, pg, hasher, data: lfw.People, sizes: list[int], events_count: int) -> list[dict]:
    """One backend and scheme: fill to each size and trace, then the collect throughput."""
    query = str(hasher.hash(data.vectors[1]))  # a real photo; its own row and the person's others are in the store
    folder = Path(tempfile.mkdtemp(prefix="bench-trace-"))
    url = pg.new_database() if pg else str(folder / "sightings.sqlite")
    store.open_store(url).close()  # the schema, as a collector makes it
    rng, have, results = np.random.default_rng(1), 0, []
    for size in sizes:
        started = time.perf_counter()
        fill(url, pg, batches(data, hasher, size, have, rng))
        have = size
        took = time.perf_counter() - started
        print(f"{backend} {hasher.scheme}: filled to {size:,} rows in {took:.0f} s", flush=True)
        results.append({"backend": backend, "scheme": hasher.scheme, "size": size, **measure(url, query)})
        print(results[-1], flush=True)
    if events_count:
        collect_url = pg.new_database() if pg else str(folder / "collect.sqlite")
        throughput = collect_throughput(collect_url, events_count, data, hasher)
        results.append({"backend": backend, "scheme": hasher.scheme, "collect events/s": round(throughput)})
        print(results[-1], flush=True)
    return results


if __name__ == "__main__":
    main()
