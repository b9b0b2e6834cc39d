"""`traceon-edge status`: what a unit is doing, for a technician on the unit (readable, or --json).

Reads the configuration, the outbox and the daemon's latest health report (a file beside the outbox)
directly, and tries a TCP connection to the broker; each part that cannot be had is reported as such
rather than failing the whole command.
"""

from __future__ import annotations

import socket
import sqlite3
import time

from edge import __version__
from edge.core import events, health_file, keychain, shipped
from edge.core.shown import shown
from edge.field import unwritable
from edge.unit import config, outbox


def _outbox(path) -> dict:
    try:
        depth, dropped_full = outbox.summary(path)
        return {"path": str(path), "depth": depth, "dropped_full": dropped_full}
    except sqlite3.Error as e:
        return {"path": str(path), "error": f"cannot read the outbox: {e}"}


def daemon_health(cfg: config.Config) -> dict:
    """The daemon's latest health report, from the file it keeps beside its outbox: whether it runs (a report
    newer than three health periods, or failing that the lock it holds while it runs), and what it says. No
    broker account is used: on a locked-down broker the unit's account cannot read its own topics, and a
    second login would take its client id."""
    path = health_file.path_beside(cfg.outbox.path)
    uid = health_file.running(cfg.outbox.path)
    try:
        health = health_file.read(path)
        age = time.time() - events.parse_utc(health["at"]).timestamp()
    except FileNotFoundError:
        if uid is not None:
            return _cannot_write(cfg, uid, {})
        return {"daemon": "not running", "why": f"no health report at {path}: the daemon has not run with this config"}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        return {"daemon": "unknown", "why": f"cannot read the health report {path}: {e}"}
    invalid = events.problem(health, "health")
    if invalid:
        return {"daemon": "unknown", "why": f"the health report is invalid: {invalid}"}
    if health["state"] == "stopped" and uid is None:
        daemon = "stopped"
    elif age > 3 * cfg.mqtt.health_every + 5:
        if uid is not None:  # its lock is held: it runs, but its reports no longer reach the file
            return _cannot_write(cfg, uid, {"health_age_s": round(age), "health": health})
        daemon = "not running"  # killed, or hung: it writes a report every health period while it runs
    else:
        daemon = "running"
    return {"daemon": daemon, "health_age_s": round(age), "health": health}


def _cannot_write(cfg: config.Config, uid: int, last: dict) -> dict:
    why = unwritable.why(cfg.outbox.path.parent, uid)
    return {"daemon": "running", "health_file": why, "why": f"but cannot write its health file: {why}", **last}


def broker_reachable(cfg: config.Config, timeout: float = 3.0) -> str:
    """A plain TCP connection, no MQTT login (the daemon's own health says whether it is logged in)."""
    try:
        socket.create_connection((cfg.mqtt.host, cfg.mqtt.port), timeout=timeout).close()
    except OSError as e:
        return f"unreachable at {cfg.mqtt.host}:{cfg.mqtt.port}: {e.strerror or e}"
    return f"reachable at {cfg.mqtt.host}:{cfg.mqtt.port}"


def _key(path) -> dict:
    """The key the unit's key file holds now: its id and, for a key chain, its epoch."""
    chain = keychain.load(path)
    return {"key_id": chain.key.id, "key_epoch": chain.name(), "epoch_length": chain.length}


def gather(path) -> dict:
    cfg = config.load(path)
    files = shipped.load_models()
    report = {
        "software": f"traceon-edge {__version__}",
        "unit": f"{cfg.unit.site}/{cfg.unit.checkpoint}/{cfg.unit.device}",
        "config": {"path": str(path), "fingerprint": config.fingerprint(path)},
        "model": files.model_id,
        **_key(cfg.facehash.key_file),
        "scheme": cfg.facehash.scheme,
        "outbox": _outbox(cfg.outbox.path),
    }
    report.update(daemon_health(cfg))
    report["broker"] = broker_reachable(cfg)
    return report


def _scheme_differs(configured: str, running) -> str:
    """What the daemon publishes, when it is not what the config says (it runs an older config: reload)."""
    return "" if running in (None, configured) else f"  (daemon publishes {shown(str(running), 10)}: reload)"


def _epoch(report: dict, health: dict) -> str:
    """The epoch of the key file, and the daemon's when it holds another key (it moved since, or runs an old file)."""
    if report.get("epoch_length") is None:
        said = "fixed key (a plain key file: never moves)"
    else:
        said = f"epoch {report['key_epoch']} (a key chain of {report['epoch_length']} epochs: moves forward by itself)"
    running = health.get("key_id")
    if running not in (None, report["key_id"]):
        said += f"  (daemon holds key id {shown(str(running), 10)}, {shown(str(health.get('key_epoch', '?')), 30)})"
    return said


def render(report: dict) -> str:
    """The report for a person; every string read from the health file goes through `shown`."""
    health = report.get("health", {})
    outbox = report["outbox"]
    last = health.get("last_event") or {}
    running = health.get("config")
    said = report["daemon"] + (f", {shown(report['why'], 400)}" if "health_file" in report else "")
    if health:
        said += f", up {health.get('uptime_s', '?')} s, last report {report['health_age_s']} s ago"
    if "why" in report and "health_file" not in report:
        said += f": {shown(report['why'], 400)}"
    lines = [
        f"unit        {report['unit']}   ({report['software']})",
        f"daemon      {said}",
        f"config      {report['config']['path']}  fingerprint {report['config']['fingerprint']}"
        + ("" if not running or running == report["config"]["fingerprint"] else f"  (daemon runs {running}: reload)"),
        f"model       {report['model']}    key id {report['key_id']}    scheme {report['scheme']}"
        + _scheme_differs(report["scheme"], health.get("scheme")),
        f"key         {_epoch(report, health)}",
        f"camera      {shown(health.get('camera', 'unknown'), 300)}",
        f"broker      {report['broker']}"
        + (f"; daemon says: {shown(health['broker'], 300)}" if "broker" in health else ""),
        f"outbox      {outbox.get('depth', '?')} waiting"
        + (f", {outbox['error']}" if "error" in outbox else "")
        + f", {outbox.get('dropped_full', 0)} dropped when full",
        f"last event  {last.get('at', 'none')}" + (f", {last.get('persons')} person(s)" if last else ""),
    ]
    return "\n".join(lines)
