"""The daemon against a real mosquitto: PIR replay, broker outage, SIGKILL, privacy, SIGHUP, SIGTERM. Its vision
(two faces on video, a failing detector, a busy vision queue): test_daemon_vision.py."""

from __future__ import annotations

import itertools
import json
import logging
import re
import signal
import time

from support.daemon import DaemonProcess, InThread, pending_ids
from support.data import need_data
from support.mqtt import Subscriber
from support.pir import sampled_factory, wait_sampled
from support.servers import Broker, make_certificates, tls_listener
from support.unit_config import faces_folder, photos_on_demand, write_config
from support.wait import wait_until

from edge.core import events, facehash, schemes

JPEG, PNG = b"\xff\xd8\xff", b"\x89PNG"
FLOATS = re.compile(rb"\[\s*-?\d+\.\d+(e-?\d+)?(\s*,\s*-?\d+\.\d+(e-?\d+)?){7,}")  # 8 or more floats in a row
INTEGERS = re.compile(rb"\[\s*-?\d+(\s*,\s*-?\d+){7,}")  # an int8 embedding, a landmark list
OPAQUE = re.compile(rb"[A-Za-z0-9+/=_-]{120,}")  # base64 of a crop or an embedding
# the one long opaque string allowed out, of either scheme (an fh2 code is a keyed rotation, not the embedding),
# at its exact length: text glued onto a FaceHash is left to be found
FACEHASH = re.compile(rb"fh1:[a-z2-7]{8}:[a-z2-7]{20,206}|fh2:[a-z2-7]{8}:[a-z2-7]{205}")


def leaks(data: bytes) -> list[str]:
    """What in `data` looks like image bytes, a list of numbers or a long opaque string (FaceHashes aside)."""
    data = FACEHASH.sub(b"fh:", data)
    found = [
        name
        for name, pattern in (("float list", FLOATS), ("integer list", INTEGERS), ("opaque", OPAQUE))
        if pattern.search(data)
    ]
    return found + [name for name, magic in (("JPEG", JPEG), ("PNG", PNG)) if magic in data]


def test_the_leak_check_passes_fh2_codes_and_finds_an_embedding_planted_beside_them():
    """fh2 codes are long opaque strings the check lets out: an embedding in any form still shows."""
    import base64

    import numpy as np
    from support.events import KEY, sample_event

    embedding = np.random.default_rng(7).normal(size=128)
    embedding /= np.linalg.norm(embedding)
    code = str(schemes.hasher(KEY, facehash.load_scheme(), "fh2").hash(embedding))
    event = sample_event(1) | {"schema_version": 3, "scheme": "fh2", "key_id": KEY.id}
    event["persons"] = [{"facehash": code, "frames": 1, "quality": {"size": 90, "frontalness": 1, "sharpness": 9}}]
    assert leaks(json.dumps(events.validate(event)).encode()) == []
    int8 = np.clip(np.rint(embedding * 127), -127, 127).astype(np.int8)
    planted = {
        "float list": [round(float(v), 6) for v in embedding],
        "integer list": int8.tolist(),
        "opaque": base64.b64encode(embedding.astype(np.float32).tobytes()).decode(),
    }
    for kind, value in planted.items():
        assert kind in leaks(json.dumps(event | {"extra": value}).encode()), kind
    raw32 = base64.b32encode(int8.tobytes()).decode().rstrip("=").lower()  # an fh2 payload without its FaceHash
    glued = {**event["persons"][0], "facehash": code + raw32}
    for body in (event | {"extra": raw32}, event | {"persons": [glued]}):
        assert leaks(json.dumps(body).encode()) == ["opaque"]


def test_a_folder_of_photos_has_every_photo_searched_whole(tmp_path, broker):
    """Unrelated photos: a face's place in one says nothing of where the next one's is."""
    folder = tmp_path / "frames"
    folder.mkdir()
    people = sorted(p.name for p in need_data("faces").iterdir())
    for person in people:
        photo = sorted(need_data("faces", person).iterdir())[0]
        (folder / f"{person}{photo.suffix}").write_bytes(photo.read_bytes())
    source = f"{{kind: images, path: {folder}, loop: false}}"
    burst = f"{{frames: {len(people)}, duration: 0.1, cooldown: 0}}"
    unit = InThread(write_config(tmp_path, broker.port, "{kind: manual}", source, burst=burst, upsample=0))
    try:
        unit.daemon.inbox.fire("manual")
        wait_until(lambda: len(unit.delivered) == 1, 60, "the burst's event")
    finally:
        unit.stop()
    assert unit.delivered[0]["faces"] == len(people)


def test_replay_with_pir_pulses_gives_schema_valid_events_and_nothing_else(tmp_path, broker):
    clip = need_data("video", "short_hamilton_clip.mp4")
    path = write_config(
        tmp_path, broker.port, "{kind: pir, pin: 17, queue_len: 1}", f"{{kind: video, path: {clip}, realtime: false}}"
    )
    everything = Subscriber(broker.port, "#", "privacy-watch")
    factory = sampled_factory()
    logged: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: logged.append(record.getMessage())
    logging.getLogger().addHandler(handler)
    unit = InThread(path, factory)
    pin = factory.pin(17)
    try:
        everything.wait_for(
            lambda s: any(t.endswith("/status") and p == b"online" for t, p, _ in s.messages),
            30,
            "the unit's online status",
        )
        wait_sampled(pin)  # gpiozero takes its first sample(s) before it reports changes
        for burst in range(9):  # 9 bursts of 30 frames cover the 275-frame clip
            pin.drive_high()
            everything.wait_for(lambda s, n=burst + 1: len(s.events()) >= n, 60, f"the event of burst {burst}")
            pin.drive_low()
            wait_sampled(pin)  # the sensor has seen the pulse end before the next one begins
    finally:
        unit.stop()
        logging.getLogger().removeHandler(handler)
        try:  # the last messages, `offline` among them, are checked for leaks below too
            everything.wait_for(
                lambda s: any(p == b"offline" for _, p, _ in s.messages), 10, "the unit's offline status"
            )
        finally:
            everything.close()
    received = everything.events()
    assert len(received) == 9
    for event in received:
        events.validate(event)
        assert event["trigger"] == "pir"
        assert (event["schema_version"], event["scheme"]) == (3, "fh2")  # the default
    hashes = [p["facehash"] for e in received for p in e["persons"]]
    assert {facehash.parse(code).scheme for code in hashes} == {"fh2"}
    threshold = facehash.load_scheme()["fh2"]["threshold"]
    assert len(hashes) >= 4  # Lin-Manuel Miranda, in every burst where his face is large and sharp enough
    assert max(facehash.distance(a, b) for a, b in itertools.combinations(hashes, 2)) <= threshold
    assert sum(e["faces"] for e in received) > len(hashes)  # the blurred audience member: counted, not hashed
    print(
        f"\n{len(received)} events, persons per event {[len(e['persons']) for e in received]}, faces per event "
        f"{[e['faces'] for e in received]}, {len(hashes)} FaceHashes, max pairwise distance "
        f"{max(facehash.distance(a, b) for a, b in itertools.combinations(hashes, 2)):.3f} (threshold {threshold})"
    )

    # privacy: every message on every topic is a status word, a schema-valid health report or a schema-valid
    # event, and neither they, the outbox nor the log hold image bytes, number lists or opaque strings
    health_reports = 0
    for topic, payload, _ in everything.messages:
        assert leaks(payload) == [], topic
        if topic.endswith("/status"):
            assert payload in (b"online", b"offline")
        elif topic.endswith("/health"):
            assert events.validate(json.loads(payload), "health")["scheme"] == "fh2"
            health_reports += 1
        else:
            assert topic.endswith("/events")
            events.validate(json.loads(payload))
    assert health_reports >= 1
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("outbox*"))  # the outbox and its health report
    assert leaks(stored) == []
    events.validate(json.loads((tmp_path / "outbox.health.json").read_text()), "health")
    assert leaks("\n".join(logged).encode()) == [] and any("committed" in line for line in logged)
    assert pending_ids(tmp_path / "outbox.sqlite") == []


def test_events_wait_out_a_broker_outage_and_arrive_once_each_in_order(tmp_path, broker):
    path = photos_on_demand(tmp_path, broker.port, "{frames: 2, duration: 0.1, cooldown: 0}")
    subscriber = Subscriber(broker.port, "traceon/#", "tracer")
    unit = InThread(path)
    outbox = tmp_path / "outbox.sqlite"
    try:
        subscriber.wait_for(lambda s: any(p == b"online" for _, p, _ in s.messages), 30, "the unit's online status")
        broker.stop()
        for n in range(20):
            unit.daemon.inbox.fire("manual")
            wait_until(lambda n=n: len(pending_ids(outbox)) >= n + 1, 30, f"event {n + 1} committed to the outbox")
        committed = pending_ids(outbox)
        assert len(committed) == 20
        assert subscriber.events() == []
        broker.start()
        subscriber.wait_for(
            lambda s: len(s.events()) >= 20,
            90,
            lambda: f"all 20 events at the tracer ({len(subscriber.events())} arrived)",
        )
        wait_until(lambda: pending_ids(outbox) == [], 30, "the outbox emptied by the broker's acknowledgements")
        time.sleep(1)  # only to show that nothing more arrives: no event comes a second time within 1 s
    finally:
        unit.stop()
        subscriber.close()
    ids = [e["event_id"] for e in subscriber.events()]
    assert ids == committed  # every one, once, in the order they were committed
    assert pending_ids(outbox) == []


def test_sighup_with_a_bad_config_keeps_the_old_one_and_a_good_one_applies(tmp_path, broker):
    folder = faces_folder(tmp_path)
    path = write_config(
        tmp_path, broker.port, "{kind: manual}", f"{{kind: images, path: {folder}, loop: true}}", upsample=0
    )
    health = Subscriber(broker.port, "traceon/+/+/+/health", "health-watch")
    from edge.unit import config

    old = config.fingerprint(path)
    unit = DaemonProcess(path, tmp_path / "daemon.log")

    def latest(s):
        reports = [json.loads(p) for _, p, _ in s.messages]
        return reports[-1]["config"] if reports else None

    try:
        health.wait_for(lambda s: latest(s) == old, 30, "a health report of the first config")
        path.write_text(path.read_text().replace("burst: {", "burst: {framez: 3, "))
        unit.process.send_signal(signal.SIGHUP)
        wait_until(lambda: unit.said("not reloading"), 30, "the daemon to refuse the invalid config")
        reports = len(health.messages)
        health.wait_for(lambda s: len(s.messages) > reports, 10, "a health report after the refused reload")
        assert unit.process.poll() is None
        assert latest(health) == old
        path.write_text(path.read_text().replace("framez: 3, ", "").replace("frames: 10", "frames: 4"))
        new = config.fingerprint(path)
        unit.process.send_signal(signal.SIGHUP)
        health.wait_for(lambda s: latest(s) == new, 30, "a health report of the new config")
        assert unit.stop() == 0  # SIGTERM
    finally:
        if unit.process.poll() is None:
            unit.kill()
        health.close()
    log = unit.log.read_text()
    assert "not reloading, the new config is invalid" in log and "burst.framez: unknown key" in log
    assert f"reloaded config {new}" in log


def test_a_missing_camera_is_reported_and_the_daemon_keeps_running(tmp_path, broker):
    import paho.mqtt.client as mqtt

    path = write_config(
        tmp_path,
        broker.port,
        "{kind: manual}",
        "{kind: webcam, device: /dev/video-missing}",
        burst="{frames: 3, duration: 0.1, cooldown: 0}",
        upsample=0,
    )
    watch = Subscriber(broker.port, "traceon/#", "camera-watch")
    unit = InThread(path)
    try:

        def camera_state(s):
            reports = [json.loads(p) for t, p, _ in s.messages if t.endswith("/health")]
            return reports[-1]["camera"] if reports else ""

        # the first health report: sent after the unit subscribed to its trigger topic, and the broker takes a
        # client's packets in order, so a trigger sent now reaches it
        watch.wait_for(lambda s: s.health(), 30, "the unit's first health report")
        # a person at the door asks for a burst over MQTT; the camera is gone, the sighting still counts
        sender = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="technician")
        sender.connect("127.0.0.1", broker.port)
        sender.loop_start()
        sender.publish("traceon/s1/door/d1/cmd/trigger", b"", qos=1).wait_for_publish(5)
        watch.wait_for(lambda s: len(s.events()) == 1, 30, "the event of the burst without a camera")
        watch.wait_for(
            lambda s: "cannot open webcam '/dev/video-missing'" in camera_state(s),
            10,
            lambda: f"health to name the missing camera (it says {camera_state(watch)!r})",
        )
        sender.disconnect()
        sender.loop_stop()
    finally:
        unit.stop()
        watch.close()
    (event,) = watch.events()
    assert event["trigger"] == "manual" and event["frames"] == 0 and event["persons"] == []
    assert unit.thread is not None and unit.error is None


def test_triggers_during_a_burst_and_its_cooldown_are_coalesced(tmp_path, broker):
    path = photos_on_demand(tmp_path, broker.port, "{frames: 2, duration: 0.1, cooldown: 2}")
    watch = Subscriber(broker.port, "traceon/#", "coalesce-watch")
    unit = InThread(path)
    inbox = unit.daemon.inbox
    try:
        watch.wait_for(lambda s: s.health(), 30, "the unit's first health report")
        for _ in range(10):  # a PIR chattering during one person's pass
            inbox.fire("manual")
            time.sleep(0.1)  # pacing, not waiting: the ten triggers spread over the burst and its 2 s cooldown
        watch.wait_for(lambda s: s.events(), 30, "the burst's event")
        # 1 trigger taken + 9 coalesced accounts for all 10: no second burst can follow
        wait_until(lambda: inbox.coalesced >= 9, 10, lambda: f"9 triggers coalesced ({inbox.coalesced} were)")
    finally:
        unit.stop()
        watch.close()
    assert len(watch.events()) == 1
    assert unit.daemon.inbox.coalesced == 9


def test_events_travel_over_mutual_tls(tmp_path):
    """The daemon connects with its client certificate to a TLS-only listener that requires one."""
    make_certificates(tmp_path)
    tls_port, lines = tls_listener(tmp_path, require_certificate=True)
    broker = Broker(tmp_path, extra=lines)
    broker.start()
    watch = Subscriber(broker.port, "traceon/#", "tls-watch")
    path = photos_on_demand(tmp_path, tls_port, "{frames: 2, duration: 0.1, cooldown: 0}")
    path.write_text(
        path.read_text().replace(
            f"mqtt: {{port: {tls_port},",
            f"mqtt: {{host: localhost, port: {tls_port}, "
            "tls: {ca_file: ca.crt, cert_file: client.crt, key_file: client.key},",
        )
    )
    unit = InThread(path)
    try:
        watch.wait_for(lambda s: any(p == b"online" for _, p, _ in s.messages), 30, "the unit's online status")
        unit.daemon.inbox.fire("manual")
        watch.wait_for(lambda s: len(s.events()) == 1, 30, "the event, over mutual TLS")
    finally:
        unit.stop()
        watch.close()
        broker.stop()
    assert len(watch.events()[0]["persons"]) == 2  # a burst of two frames: the Obama and the Biden photo
