"""`traceon-edge status`: ids, config fingerprint, outbox and the daemon's retained health, or why not."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from support.daemon import InThread
from support.health import good_health
from support.servers import free_port
from support.unit_config import photos_on_demand
from support.wait import wait_until

from edge.core import events, health_file
from edge.field import status
from edge.unit import config


def test_status_reports_a_running_unit(tmp_path, broker):
    path = photos_on_demand(tmp_path, broker.port, "{frames: 2, duration: 0.1, cooldown: 0}")
    health = health_file.path_beside(config.load(path).outbox.path)
    unit = InThread(path)
    try:
        wait_until(health.exists, 30, "the daemon's first health report")
        unit.daemon.inbox.fire("manual")
        wait_until(lambda: unit.delivered, 30, "the event, acknowledged by the broker")
        wait_until(lambda: health_file.read(health).get("last_event"), 30, "a health report after the event")
        report = status.gather(path)
        text = subprocess.run(
            [sys.executable, "-m", "edge.cli", "status", "--config", str(path), "--json"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        unit.stop()
    assert report["daemon"] == "running" and report["health_age_s"] <= 3
    assert report["config"]["fingerprint"] == config.fingerprint(path)
    assert report["health"]["config"] == config.fingerprint(path)
    assert report["health"]["last_event"]["persons"] == 2
    assert report["outbox"]["depth"] == 0
    assert report["key_id"] == report["health"]["key_id"]
    assert report["scheme"] == report["health"]["scheme"] == "fh2"  # the default, beside the key id
    assert json.loads(text)["unit"] == "s1/door/d1"
    readable = status.render(report)
    assert "daemon      running" in readable and "2 person(s)" in readable
    assert f"key id {report['key_id']}    scheme fh2\n" in readable
    stopped = status.gather(path)  # the daemon left a last report when it stopped
    assert stopped["daemon"] == "stopped" and stopped["health"]["config"] == config.fingerprint(path)


def test_status_says_when_the_daemon_publishes_another_scheme_than_the_config_and_reads_older_reports(tmp_path):
    path = photos_on_demand(tmp_path, free_port(), "{frames: 2, duration: 0.1, cooldown: 0}")
    beside = health_file.path_beside(config.load(path).outbox.path)
    health_file.write(beside, good_health(scheme="fh1"))  # it runs a config from before the change
    assert "scheme fh2  (daemon publishes fh1: reload)" in status.render(status.gather(path))
    older = {k: v for k, v in good_health().items() if k != "scheme"}  # a unit from before scheme fh2
    health_file.write(beside, older)
    report = status.gather(path)
    assert report["daemon"] == "running" and "daemon publishes" not in status.render(report)


def test_status_says_when_the_broker_is_unreachable(tmp_path):
    path = photos_on_demand(tmp_path, free_port(), "{frames: 2, duration: 0.1, cooldown: 0}")
    report = status.gather(path)
    assert report["broker"].startswith("unreachable at localhost:")
    assert report["daemon"] == "not running"
    assert "the daemon has not run with this config" in status.render(report)


def test_status_tells_a_killed_or_hung_daemon_by_the_age_of_its_last_report(tmp_path):
    path = photos_on_demand(tmp_path, free_port(), "{frames: 2, duration: 0.1, cooldown: 0}")
    cfg = config.load(path)
    report = good_health(at=events.utc(time.time() - 60))  # health_every is 1 s
    health_file.write(health_file.path_beside(cfg.outbox.path), report)
    assert status.gather(path)["daemon"] == "not running"
    health_file.write(health_file.path_beside(cfg.outbox.path), {**report, "at": events.utc(time.time())})
    assert status.gather(path)["daemon"] == "running"
    health_file.path_beside(cfg.outbox.path).write_text("{not json")
    assert status.gather(path)["daemon"] == "unknown"


def test_a_hostile_health_file_never_blocks_status_and_a_planted_link_is_not_followed(tmp_path):
    import os

    path = photos_on_demand(tmp_path, free_port(), "{frames: 2, duration: 0.1, cooldown: 0}")
    health = health_file.path_beside(config.load(path).outbox.path)
    os.mkfifo(health)  # a reader that opened it normally would wait for a writer forever
    fifo = status.gather(path)
    health.unlink()
    health.write_text('{"at": "' + "x" * 70_000 + '"}')
    large = status.gather(path)
    assert fifo["daemon"] == large["daemon"] == "unknown"
    assert "not a regular file" in fifo["why"] and "larger than a health report" in large["why"]
    victim = tmp_path / "victim"
    victim.write_text("kept")
    health.with_name(health.name + ".part").symlink_to(victim)
    health_file.write(health, good_health())
    assert victim.read_text() == "kept" and status.gather(path)["daemon"] == "running"
