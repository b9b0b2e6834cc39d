"""Health reports as a unit makes them (edge/core/health.schema.json), for tests that need one without a daemon."""

from __future__ import annotations

import time

from edge import __version__
from edge.core import events


def good_health(**changes) -> dict:
    """A valid health report of a running unit made now; `changes` replace its top-level fields."""
    report = {
        "state": "running",
        "software": f"traceon-edge {__version__}",
        "at": events.utc(time.time()),
        "uptime_s": 12,
        "config": "0123456789abcdef",
        "model": "facenet_small@0123456789ab",
        "key_id": "abcdefgh",
        "scheme": "fh2",
        "camera": "ok",
        "broker": "connected",
        "clock": {"synchronized": True, "via": "test", "restamped": 0},
        "threads": {"vision": True, "publisher": True},
        "last_trigger": None,
        "last_event": {"id": "6f1c2a0e-5b7d-4c1e-9a8b-0c2d3e4f5a6b", "at": events.utc(time.time()), "persons": 2},
        "outbox_depth": 0,
        "outbox": {"problem": "", "faults": []},
        "bursts": {"captured": 1, "waiting": 0},
        "dropped": {
            "outbox_full": 0,
            "lost_damaged": 0,
            "dropped_from_memory": 0,
            "triggers_coalesced": 0,
            "bursts_while_busy": 0,
            "events_failed": 0,
            "retained_triggers_ignored": 0,
        },
    }
    return {**report, **changes}
