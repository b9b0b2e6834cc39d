"""The daemon's health report: what one Runtime is doing (camera, broker, clock, threads, outbox, what was
dropped), sent by the broker link every health period and kept in a file beside the outbox for `status`.
Its fields are edge/core/health.schema.json.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from edge import __version__
from edge.core import events, health_file

log = logging.getLogger("traceon-edge")


def build(runtime) -> dict:
    """The report on `runtime` (an edge.unit.runtime.Runtime) now, `running` (the one kept as it closes says
    `stopped`)."""
    kind, at = runtime.inbox.last or (None, None)
    synchronized, via = runtime.clock.state()
    counts = runtime.outbox.counters()
    return {
        "state": "running",
        "software": f"traceon-edge {__version__}",
        "at": events.utc(runtime.clock.wall()),
        "uptime_s": round(time.time() - runtime.started),
        "config": runtime.fingerprint,
        "model": runtime.identity.model,
        **runtime.keys.health(),  # key_id, key_epoch, epoch_length
        "scheme": runtime.hasher.scheme,
        "camera": runtime.camera.state,
        "broker": runtime.link.state[:300],
        "clock": {"synchronized": synchronized, "via": via, "restamped": runtime.stats["restamped"]},
        "threads": {"vision": runtime.vision_alive, "publisher": runtime.link.alive},
        "last_trigger": {"kind": kind, "at": events.utc(at)} if kind else None,
        "last_event": runtime.last_event,
        "outbox_depth": runtime.outbox.depth(),
        "outbox": {"problem": runtime.outbox.problem[:600], "faults": runtime.outbox.faults},
        "bursts": {"captured": runtime.stats["bursts"], "waiting": runtime.bursts_waiting},
        "dropped": {
            "outbox_full": counts["dropped_full"],
            "lost_damaged": counts["lost_damaged"],
            "dropped_from_memory": counts["dropped_from_memory"],
            "triggers_coalesced": runtime.inbox.coalesced,
            "bursts_while_busy": runtime.stats["bursts_dropped_busy"],
            "events_failed": runtime.stats["events_failed"],
            "retained_triggers_ignored": runtime.link.ignored_retained,
        },
    }


class ReportFile:
    """The file beside the outbox (edge.core.health_file.path_beside) that keeps the latest report for `status`."""

    def __init__(self, path: Path):
        self.path, self._error = path, ""

    def keep(self, report: dict) -> None:
        """The latest report, on disk for `status` (a full disk is said once, not every period)."""
        try:
            health_file.write(self.path, report)
            self._error = ""
        except OSError as e:
            if not self._error:
                log.warning("cannot keep the health report in %s: %s (status will not see it)", self.path, e)
            self._error = str(e)
