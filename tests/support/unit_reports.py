"""A unit's status and health as the broker carries them, for the collector's coverage tests: a unit process
with the unit's last will (killed, the broker says `offline` for it), and a plain sender for hostile messages."""

from __future__ import annotations

import json
import subprocess
import sys

from support.wait import wait_until

# A unit's broker session as edge/unit/uplink.py opens it: `offline` as the retained last will, then a
# retained `online` and a retained health report; then it waits to be killed.
UNIT = """import json, sys, paho.mqtt.client as mqtt
port, base, health = int(sys.argv[1]), sys.argv[2], sys.argv[3]
c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=base.replace("/", "-"), protocol=mqtt.MQTTv5)
c.will_set(base + "/status", "offline", qos=1, retain=True)
c.connect("127.0.0.1", port, keepalive=5)
c.loop_start()
c.publish(base + "/status", "online", qos=1, retain=True).wait_for_publish(5)
c.publish(base + "/health", health, qos=1, retain=True).wait_for_publish(5)
print("up", flush=True)
sys.stdin.read()
"""


class UnitProcess:
    """A unit's broker session in its own process: SIGKILL drops it without a word, as a power cut does."""

    def __init__(self, port: int, unit: str, health: dict):
        base = f"traceon/{unit}"
        self.process = subprocess.Popen(
            [sys.executable, "-c", UNIT, str(port), base, json.dumps(health)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout.readline().strip() == "up", "the unit process did not connect"

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(10)


class Sender:
    """Publishes whatever a test gives it (anyone on the broker can)."""

    def __init__(self, port: int):
        import paho.mqtt.client as mqtt

        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def send(self, topic: str, payload: bytes | str, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def stored_rows(url: str, table: str) -> list[tuple]:
    """The rows of the store's statuses or health table, oldest first (without ids and received times)."""
    from edge.tracer import store

    db = store.open_store(url)
    try:
        columns = (
            "site, checkpoint, device, at_ms, state"
            if table == "statuses"
            else "site, checkpoint, device, at_ms, camera, clock"
        )
        return db.execute(f"SELECT {columns} FROM {table} ORDER BY at_ms, id").fetchall()
    finally:
        db.close()


def wait_rows(url: str, table: str, condition, what: str, timeout: float = 60) -> list[tuple]:
    return wait_until(
        lambda: (lambda rows: rows if condition(rows) else None)(stored_rows(url, table)),
        timeout,
        lambda: f"{what} (the {table} table holds {stored_rows(url, table)})",
        interval=0.2,
    )
