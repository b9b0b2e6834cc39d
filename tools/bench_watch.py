"""`traceon-edge watch` against a broker holding many retained health topics: its peak memory and what it writes.

    python tools/bench_watch.py [--units 100000] [--code DIR]

A real mosquitto on loopback gets `--units` retained health reports (valid ones, ~750 bytes, one client at
QoS 0), then watch runs as a process on a pseudo-terminal (its screen) and into a pipe (a line per change).
Printed: watch's peak RSS (VmHWM) in each mode, the bytes of one redraw, and the bytes piped. `--code` runs
another checkout's `edge` (e.g. `git archive 7d0e22f edge | tar -x -C /tmp/before`, the code before issue 19).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT / "tests"))

from servers import Broker  # noqa: E402
from support.health import good_health  # noqa: E402
from watch_load import Watcher, publish  # noqa: E402


def settled(watcher: Watcher, size, timeout: float = 300.0) -> None:
    """Until `size(watcher)` has not changed for 3 s (watch has read everything), or `timeout`."""
    deadline, last, since = time.monotonic() + timeout, -1, time.monotonic()
    while time.monotonic() < deadline:
        now = size(watcher)
        if now != last:
            last, since = now, time.monotonic()
        elif now and time.monotonic() - since > 3:
            return
        time.sleep(0.2)  # the poll interval of a benchmark's wait


def run(port: int, screen: bool, env: dict) -> dict:
    watcher = Watcher(port, screen, env, cwd=env["PYTHONPATH"])
    try:
        if screen:
            settled(watcher, lambda w: len(w.frames()[-1]) if w.frames() else 0)
            frames = watcher.frames()
            return {"peak_mb": watcher.peak_rss_kb() / 1024, "redraw_bytes": len(frames[-1]), "frames": len(frames)}
        settled(watcher, lambda w: len(w.raw()))
        return {"peak_mb": watcher.peak_rss_kb() / 1024, "piped_bytes": len(watcher.raw())}
    finally:
        watcher.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=100_000)
    parser.add_argument("--code", type=Path, default=ROOT, help="the checkout whose edge package watch runs")
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": str(args.code.resolve())}
    with tempfile.TemporaryDirectory() as folder:
        broker = Broker(Path(folder))
        broker.start()
        try:
            body = json.dumps(good_health()).encode()
            started = time.monotonic()
            publish(broker.port, ((f"traceon/s{n % 100}/c{n // 100}/d/health", body) for n in range(args.units)))
            took = time.monotonic() - started
            print(f"{args.units:,} retained health topics ({len(body)} bytes each) published in {took:.1f} s")
            print(f"watch from {args.code}")
            screen = run(broker.port, True, env)
            print(
                f"  screen: peak RSS {screen['peak_mb']:.0f} MB, {screen['redraw_bytes']:,} bytes per redraw "
                f"({screen['frames']} redraws seen)"
            )
            piped = run(broker.port, False, env)
            print(f"  piped:  peak RSS {piped['peak_mb']:.0f} MB, {piped['piped_bytes']:,} bytes printed")
        finally:
            broker.stop()


if __name__ == "__main__":
    main()
