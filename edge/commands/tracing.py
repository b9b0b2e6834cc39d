"""`traceon-edge collect` and `traceon-edge trace`: the contact tracer's commands."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import signal
import sys

from edge import sightings
from edge.errors import TraceonError


def collect(broker: str, db_url: str, prefix: str = "traceon", share: str | None = None, out=sys.stderr) -> int:
    import paho.mqtt.client as mqtt

    host, _, port = broker.partition(":")
    db = sightings.open_store(db_url)
    topic = f"{prefix}/+/+/+/events"
    if share:
        topic = f"$share/{share}/{topic}"  # MQTT 5 shared subscription: the group's collectors split the load
    counts = {"stored": 0, "repeated": 0, "refused": 0}

    def on_message(client, userdata, message):
        try:
            fresh = sightings.store(db, json.loads(message.payload))
            counts["stored" if fresh else "repeated"] += 1
        except (ValueError, TraceonError) as e:
            counts["refused"] += 1
            print(f"refused a message on {message.topic}: {e}", file=out, flush=True)

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.on_connect = lambda c, u, f, r, p: c.subscribe(topic, qos=1)
    client.on_subscribe = lambda *a: print(
        f"collecting {topic} from {broker} into {sightings.redacted(db_url)}", file=out, flush=True
    )
    client.on_message = on_message
    client.reconnect_delay_set(1, 30)
    signal.signal(signal.SIGTERM, lambda *_: client.disconnect())
    try:
        client.connect(host, int(port or 1883))
        client.loop_forever(retry_first_connection=True)
    except KeyboardInterrupt:
        client.disconnect()
    print(f"stored {counts['stored']}, already stored {counts['repeated']}, refused {counts['refused']}", file=out)
    return 0


def trace(code: str, db_url: str, stride: str, since: str, form: str, out=sys.stdout) -> int:
    db = sightings.open_store(db_url)
    rows = sightings.trace(db, code, sightings.parse_span(stride), sightings.parse_span(since))
    if form == "json":
        out.write(json.dumps([dataclasses.asdict(r) for r in rows], indent=2) + "\n")
    elif form == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow([f.name for f in dataclasses.fields(sightings.Row)])
        writer.writerows(dataclasses.astuple(r) for r in rows)
        out.write(buffer.getvalue())
    else:
        out.write(f"{'kind':<9} {'when (UTC)':<24} {'site/checkpoint':<28} {'FaceHash':<24} match / gap\n")
        for r in rows:
            detail = f"distance {r.distance:.3f}" if r.kind == "sighting" else f"{r.gap_s / 60:+.1f} min"
            out.write(
                f"{r.kind:<9} {r.at:<24} {r.site + '/' + r.checkpoint:<28} {r.facehash[:21] + '…':<24} {detail}\n"
            )
        sighted = sum(r.kind == "sighting" for r in rows)
        out.write(f"{sighted} sighting(s), {len(rows) - sighted} contact(s)\n")
    return 0
