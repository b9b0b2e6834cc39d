"""Triggers: PIR through gpiozero's MockFactory, frame-difference motion on the real clip, the inbox."""

from __future__ import annotations

from support.data import need_data
from support.pir import sampled_factory, wait_sampled
from support.wait import wait_until

from edge.unit.config import PirTriggerConfig
from edge.unit.triggers import MotionDetector, PirSensor, TriggerInbox
from edge.unit.vision.media import video_frames


def test_a_pir_pulse_fires_once_and_extra_pulses_coalesce():
    factory, inbox = sampled_factory(), TriggerInbox()
    sensor = PirSensor(PirTriggerConfig(pin=17), inbox, factory)

    def fired() -> int:  # the triggers so far, taken or coalesced (nothing takes from the inbox here)
        return inbox.coalesced + (inbox.last is not None)

    try:
        pin = factory.pin(17)
        wait_sampled(pin)  # first samples
        for n in range(1, 4):
            pin.drive_high()
            wait_until(lambda n=n: fired() == n, 10, f"pulse {n} to fire the inbox")
            pin.drive_low()
            wait_sampled(pin)  # the sensor has seen the pulse end before the next one begins
        taken = inbox.take(timeout=1)
        assert taken is not None and taken[0] == "pir"
        assert inbox.coalesced == 2
        assert inbox.take(timeout=0.1) is None
    finally:
        sensor.close()
        sensor.close()  # closing twice is harmless


def test_frame_difference_sees_the_clip_move_and_a_still_frame_not():
    frames = [f for _, f in video_frames(need_data("video", "short_hamilton_clip.mp4"), 5)]
    detector = MotionDetector(changed=0.02)
    moved = [detector.moved(f) for f in frames]
    assert not moved[0]  # nothing to compare with yet
    assert sum(moved) >= len(frames) // 4
    still = MotionDetector(changed=0.02)
    assert not any(still.moved(frames[10].copy()) for _ in range(5))
