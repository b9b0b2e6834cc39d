"""`traceon-edge watch` reading hostile retained messages from a real broker, on a pipe and on a terminal."""

from __future__ import annotations

import json

import pytest
from support.health import good_health
from support.servers import Broker
from support.wait import wait_until
from watch_load import CLEAR, Watcher, publish

from edge.field.board import Board

ESCAPES = "\x1b]0;owned\x07\x1b[2J\x1b[31mFAKE ALERT\x9b31m\u202e"


def health(**changes) -> bytes:
    return json.dumps(good_health(**changes)).encode()


HOSTILE = [  # (unit, kind, payload, what watch says of it)
    ("s1/bad/h1", "health", b'{"camera":"ok","last_event":{"at":"x"}}', "invalid health from s1/bad/h1: the message: "),
    ("s1/bad/h2", "health", b"[]", "invalid health from s1/bad/h2: the message: must be object"),
    ("s1/bad/h3", "health", b"null", "invalid health from s1/bad/h3: the message: must be object"),
    ("s1/bad/h4", "health", b"{not json", "invalid health from s1/bad/h4: not JSON"),
    ("s1/bad/h5", "health", b"\xff\xfe{}", "invalid health from s1/bad/h5: not UTF-8 text"),
    ("s1/bad/h6", "health", b'{"camera": "' + b"x" * 200_000 + b'"}', "larger than a health report can be"),
    ("s1/bad/h7", "health", health(last_event={"at": "x"}), "s1/bad/h7: last_event/at: is not in the expected form"),
    ("s1/bad/h8", "health", health(camera="x" * 400), "s1/bad/h8: camera: is longer than 300 characters"),
    ("s1/bad/h9", "health", health(outbox_depth=-1), "s1/bad/h9: outbox_depth: "),
    ("s1/bad/h10", "health", health(extra=ESCAPES), "s1/bad/h10: the message: holds a field the schema"),
    ("s1/bad/h11", "health", health(camera=ESCAPES), "\\x1b]0;owned"),
    ("s1/bad/h12", "health", health(broker="\x85\x9b2J" + ESCAPES), "\\x85\\x9b2J"),
    ("s1/bad/s1", "status", ("online" + ESCAPES).encode(), "s1/bad/s1                    online\\x1b]0;"),
    ("s1/bad/s2", "status", b"online\r\n12:00:00  s1/door/d9 FAKE", "online\\x0d\\x0a12"),
    ("s1/bad/s3", "status", b"\xffonline\xc0" + b"y" * 200_000, "\ufffdonline\ufffdyyy"),
    ("s1/bad/e1", "events", b'{"ended_at": 5}', "invalid event from s1/bad/e1: the message: "),
    ("s1/bad/e2", "events", b"[]", "invalid event from s1/bad/e2: the message: must be object"),
    ("s1/bad/e3", "events", b"[" * 200_000, "invalid event from s1/bad/e3: 200,000 bytes, larger than"),
    ("s1/bad\u202e/e4", "events", b"{}", "invalid event from s1/bad\\u202e/e4"),
    ("s1/" + "n" * 5000 + "/x", "status", b"online", "s1/nnnnnnn"),
]


@pytest.fixture
def any_broker(tmp_path):
    """A broker with no size limit: watch may be pointed at any broker, not only a collector's (64 kB)."""
    b = Broker(tmp_path, extra="message_size_limit 0\n")
    b.start()
    yield b
    b.stop()


@pytest.mark.parametrize("screen", [False, True], ids=["piped", "screen"])
def test_watch_keeps_updating_through_hostile_retained_messages_and_prints_no_control_bytes(any_broker, screen):
    broker = any_broker
    publish(broker.port, [("traceon/s1/bad/h7/health", health()), ("traceon/s1/bad/h7/status", b"online")])
    watcher = Watcher(broker.port, screen)
    try:
        wait_until(lambda: "s1/bad/h7" in watcher.text(), 30, "watch to show the good unit")
        for n, (unit, kind, payload, said) in enumerate(HOSTILE):
            publish(broker.port, [(f"traceon/{unit}/{kind}", payload), ("traceon/s1/good/d1/status", b"online-%d" % n)])

            def after(n=n, said=said):  # the bad message told, and a good one after it still shown
                shown = b"".join(watcher.frames()[-1:]).decode(errors="replace") if screen else watcher.text()
                return said in shown and f"online-{n}" in shown

            wait_until(after, 30, lambda n=n: f"watch to tell message {n}, then online-{n}:\n{watcher.text()[-3000:]}")
            assert watcher.process.poll() is None
    finally:
        err = watcher.stop()
    raw = watcher.raw()
    print(watcher.text()[-6000:], err)
    if screen:
        raw = raw.replace(CLEAR, b"")
        row = next(line for line in watcher.frames()[-1].decode().splitlines() if line.startswith("s1/bad/h7 "))
        assert "invalid health" in row and " ok " in row  # the last good report stays, flagged
    for control in (b"\x1b", b"\x07", b"\xc2\x9b", b"\xc2\x85", b"\xe2\x80\xae"):
        assert control not in raw
    assert "Traceback" not in err


def test_one_surprise_costs_one_line_and_a_row_never_blanks_the_screen():
    board = Board("traceon")
    assert "watch could not read this message (TypeError" in board.update("traceon/s/c/d/health", None, 1.0)
    board.update("traceon/s/c/d/health", health(), 1.0)
    board.units["s/c/d"].status = None  # a bug's value where a string belongs
    screen = board.render(2.0, "broker")
    assert "s/c/d" in screen and "(cannot show this unit: TypeError" in screen


def test_a_hundred_thousand_retained_units_keep_watch_small_and_each_redraw_one_screen(broker):
    body = health()
    publish(broker.port, ((f"traceon/s{n % 100}/c{n // 100}/d/health", body) for n in range(100_000)))
    publish(broker.port, [("traceon/s1/bad/h1/health", b"[]")])
    watcher = Watcher(broker.port, screen=True)
    try:
        wait_until(lambda: b"90,001 messages from the others" in b"".join(watcher.frames()[-1:]), 120, "all of them")
        peak_kb, frame = watcher.peak_rss_kb(), watcher.frames()[-1]
    finally:
        watcher.stop()
    print(f"peak RSS {peak_kb / 1024:.0f} MB, {len(frame):,} bytes per redraw")
    text = frame.decode()
    assert text.count("\n") < 80 and "… and 9,950 more units" in text
    assert text.splitlines()[3].startswith("s1/bad/h1 ")  # the unit in trouble first
    assert peak_kb < 100 * 1024  # bounded: 44 MB here (tools/bench_watch.py has the figures before issue 19)
