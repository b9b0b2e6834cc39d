"""tools/bench_trace.py still runs, at a tiny size: a change to what the store writes fails here, not in the
next measurement."""

import os
import subprocess
import sys

from support.data import ROOT, need_data


def test_the_trace_benchmark_runs_on_sqlite_and_postgresql(postgres, tmp_path):
    need_data("lfw_dev", "images")
    command = [
        sys.executable,
        str(ROOT / "tools" / "bench_trace.py"),
        "--sizes",
        "2000",
        "--events",
        "20",
        "--backends",
        "sqlite,postgresql",
        "--postgres",
        postgres,
        "--people",
        "24",
        "--scheme",
        "fh1,fh2",
    ]
    env = {**os.environ, "TMPDIR": str(tmp_path)}  # its SQLite files and broker folders go with tmp_path
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=280)
    assert result.returncode == 0, result.stderr[-3000:]
    table = result.stdout.partition("| backend | scheme | person rows |")[2]
    for backend in ("sqlite", "postgresql"):
        for scheme, words in (("fh1", "bits"), ("fh2", "(fh2 code units)")):
            line = next((x for x in table.splitlines() if x.startswith(f"| {backend} | {scheme} | 2,000 |")), "|")
            sightings = line.rstrip(" |").rpartition("| ")[2]
            assert words in sightings and int(sightings.split()[0]) >= 1, result.stdout  # the query photo's own row
            assert f"collect {scheme} into {backend}: " in table, result.stdout
