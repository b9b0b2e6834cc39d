"""Outbox drain rate through the unit's own broker link, with 0, 20 and 100 ms added to each round trip.

    python tools/bench_delivery.py [--events 400] [--delays 0,20,100]

A real mosquitto on loopback, behind a relay that holds every byte back by half the delay each way. The
outbox is filled with events of one person (~700 bytes, made by the unit's own code: tools/unit_events.py),
then the link is started and timed until the outbox is empty and a subscriber has every event. `in_flight 1`
is the link before issue 13 (one event per round trip), in the same run; a subscriber checks that every event
arrives, in commit order.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

import unit_events  # noqa: E402
from servers import Broker, DelayRelay  # noqa: E402

from edge.core import facehash  # noqa: E402
from edge.core.topics import Topics  # noqa: E402
from edge.unit.config import MqttConfig  # noqa: E402
from edge.unit.outbox import Outbox  # noqa: E402
from edge.unit.uplink import BrokerLink  # noqa: E402


def drain(broker: Broker, delay: float, window: int, count: int, folder: Path, template: dict) -> tuple[float, bool]:
    """Events per second from start to an empty outbox, and whether the subscriber got all in order."""
    relay = DelayRelay(broker.port, delay)
    outbox = Outbox(folder / f"outbox-{delay}-{window}.sqlite", 100_000, 1 << 30)
    made = [unit_events.another(template) for _ in range(count)]
    ids = [e["event_id"] for e in made]
    for e in made:
        outbox.put(e)
    topics = Topics("bench", "s", "c", f"d{window}")
    got: list[str] = []
    everything = threading.Event()
    subscriber = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)

    def received(client, userdata, message) -> None:
        got.append(json.loads(message.payload)["event_id"])
        if len(got) >= count:
            everything.set()

    subscriber.on_message = received
    subscriber.connect("127.0.0.1", broker.port)
    subscriber.subscribe(topics.events, qos=1)
    subscriber.loop_start()
    time.sleep(0.3)
    settings = MqttConfig(host="127.0.0.1", port=relay.port, in_flight=window, health_every=3600)
    link = BrokerLink(settings, topics, outbox, lambda: {}, lambda: None)
    started = time.perf_counter()
    link.start()
    while outbox.depth() and time.perf_counter() - started < 600:
        time.sleep(0.01)
    took = time.perf_counter() - started
    everything.wait(30)
    link.stop(flush_seconds=0)
    subscriber.disconnect()  # before loop_stop: it wakes paho's loop, which would otherwise finish its 1 s wait
    subscriber.loop_stop()
    relay.close()
    outbox.close()
    return count / took, got == ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=400)
    parser.add_argument("--delays", default="0,20,100", help="ms added to each round trip, comma-separated")
    args = parser.parse_args()
    delays = [float(ms) / 1000 for ms in args.delays.split(",")]
    hasher = facehash.FaceHasher(facehash.Key(b"d" * 32), facehash.load_scheme())
    template = unit_events.event(hasher, unit_events.random_embeddings(1), time.time())
    size = len(json.dumps(template, separators=(",", ":")))
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("edge.unit.uplink").setLevel(logging.CRITICAL)  # the bench's empty health report is refused
    with tempfile.TemporaryDirectory() as tmp:
        broker = Broker(Path(tmp))
        broker.start()
        try:
            print(f"outbox drain through the broker link, {args.events} events of {size} bytes each")
            for delay in delays:
                rates = {}
                for window in (1, 20):
                    # one event per round trip is slow across a delay: fewer events keep the run short
                    fewer = max(min(50, args.events), int(args.events * 0.02 / delay / 4)) if delay else args.events
                    count = args.events if window > 1 else fewer
                    rates[window], in_order = drain(broker, delay, window, count, Path(tmp), template)
                    print(
                        f"  +{delay * 1000:3.0f} ms, in_flight {window:2d}: {rates[window]:7.1f} events/s "
                        f"({count} events, {'all in commit order' if in_order else 'NOT ALL IN ORDER'})"
                    )
                print(f"  +{delay * 1000:3.0f} ms: in_flight 20 drains {rates[20] / rates[1]:.1f}× in_flight 1")
        finally:
            broker.stop()


if __name__ == "__main__":
    main()
