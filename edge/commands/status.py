"""`traceon-edge status`: what a unit is doing, for a technician on the unit (readable, or --json).

Reads the configuration and the outbox directly, and the daemon's own retained health report from the
broker; each part that cannot be had is reported as such rather than failing the whole command.
"""

from __future__ import annotations

import json
import sqlite3
import threading

from edge import __version__, config
from edge.broker import secure
from edge.facehash import load_key
from edge.topics import Topics
from edge.vision import models


def _outbox(path) -> dict:
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=2) as db:
            depth = db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
            row = db.execute("SELECT value FROM counters WHERE name = 'dropped_full'").fetchone()
        return {"path": str(path), "depth": depth, "dropped_full": row[0] if row else 0}
    except sqlite3.Error as e:
        return {"path": str(path), "error": f"cannot read the outbox: {e}"}


def retained_health(cfg: config.Config, timeout: float = 3.0) -> dict:
    import paho.mqtt.client as mqtt

    topics = Topics(cfg.mqtt.topic_prefix, cfg.unit.site, cfg.unit.checkpoint, cfg.unit.device)
    got: dict = {}
    done = threading.Event()

    def on_message(client, userdata, message):
        got[message.topic.rsplit("/", 1)[1]] = message.payload.decode(errors="replace")
        if "health" in got and "status" in got:
            done.set()

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"traceon-status-{cfg.unit.device}")
    secure(client, cfg.mqtt)
    client.on_message = on_message
    client.on_connect = lambda c, u, f, r, p: c.subscribe([(topics.health, 1), (topics.status, 1)])
    try:
        client.connect(cfg.mqtt.host, cfg.mqtt.port, keepalive=10)
    except OSError as e:
        return {"broker": f"unreachable at {cfg.mqtt.host}:{cfg.mqtt.port}: {e.strerror or e}"}
    client.loop_start()
    done.wait(timeout)
    client.disconnect()
    client.loop_stop()
    result: dict = {"broker": f"reachable at {cfg.mqtt.host}:{cfg.mqtt.port}", "status": got.get("status", "unknown")}
    if "health" in got:
        try:
            result["health"] = json.loads(got["health"])
        except json.JSONDecodeError:
            result["health"] = {"error": "unreadable health report"}
    return result


def collect(path) -> dict:
    cfg = config.load(path)
    files = models.load()
    report = {
        "software": f"traceon-edge {__version__}",
        "unit": f"{cfg.unit.site}/{cfg.unit.checkpoint}/{cfg.unit.device}",
        "config": {"path": str(path), "fingerprint": config.fingerprint(path)},
        "model": files.model_id,
        "key_id": load_key(cfg.facehash.key_file).id,
        "outbox": _outbox(cfg.outbox.path),
    }
    report.update(retained_health(cfg))
    return report


def render(report: dict) -> str:
    health = report.get("health", {})
    outbox = report["outbox"]
    last = health.get("last_event") or {}
    running = health.get("config")
    lines = [
        f"unit        {report['unit']}   ({report['software']})",
        f"daemon      {report.get('status', 'unknown')}"
        + (f", up {health.get('uptime_s', '?')} s" if health else " (no health report on the broker)"),
        f"config      {report['config']['path']}  fingerprint {report['config']['fingerprint']}"
        + ("" if not running or running == report["config"]["fingerprint"] else f"  (daemon runs {running}: reload)"),
        f"model       {report['model']}    key id {report['key_id']}",
        f"camera      {health.get('camera', 'unknown')}",
        f"broker      {report['broker']}" + (f"; daemon says: {health['broker']}" if "broker" in health else ""),
        f"outbox      {outbox.get('depth', '?')} waiting"
        + (f", {outbox['error']}" if "error" in outbox else "")
        + f", {outbox.get('dropped_full', 0)} dropped when full",
        f"last event  {last.get('at', 'none')}" + (f", {last.get('persons')} person(s)" if last else ""),
    ]
    return "\n".join(lines)
