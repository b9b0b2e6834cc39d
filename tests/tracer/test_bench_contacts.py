"""tools/bench_contacts.py and tools/bench_flood_trace.py still run, at a tiny size: a change to the
trace's values or the store's columns fails here, not in the next measurement."""

import os
import subprocess
import sys

from support.data import ROOT


def run(tool: str, *args: str, tmp: str = "") -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT), **({"TMPDIR": tmp} if tmp else {})}  # its stores go with tmp
    done = subprocess.run([sys.executable, str(ROOT / "tools" / tool), *args], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_the_grouping_benchmark_compares_the_old_loop_and_estimates_past_its_limit():
    said = run("bench_contacts.py", "--sizes", "200,600", "--old-limit", "200")
    assert "| 200 | 105 |" in said and "| yes |" in said, said  # 100 random rows and 5 people
    assert "| 600 | 505 |" in said and "(estimated: n² fit, not run)" in said, said


def test_the_flood_benchmark_runs_a_trace_command(tmp_path):
    said = run("bench_flood_trace.py", "--sizes", "300", "--tree", f"here={ROOT}", tmp=str(tmp_path))
    assert "| 300 | here | " in said, said
