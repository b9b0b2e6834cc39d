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
    ]
    env = {**os.environ, "TMPDIR": str(tmp_path)}  # its SQLite files and broker folders go with tmp_path
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=280)
    assert result.returncode == 0, result.stderr[-3000:]
    table = result.stdout.partition("| backend | person rows |")[2]
    for backend in ("sqlite", "postgresql"):
        assert f"| {backend} | 2,000 |" in table, result.stdout
        assert f"collect into {backend}: " in table, result.stdout
