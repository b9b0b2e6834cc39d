"""A PIR sensor on gpiozero's mock pins, with a pin that counts how often gpiozero has sampled it: a test
drives the pin, then waits until the sensor has sampled the new level, instead of sleeping."""

from __future__ import annotations

from gpiozero.pins.mock import MockFactory, MockPin

from support.wait import wait_until


class SampledPin(MockPin):
    """A mock pin that counts its reads (gpiozero's sensor thread reads it once a sample)."""

    def __init__(self, factory, info):
        super().__init__(factory, info)
        self.reads = 0

    def _get_state(self):
        self.reads += 1
        return super()._get_state()


def sampled_factory() -> MockFactory:
    return MockFactory(pin_class=SampledPin)


def wait_sampled(pin: SampledPin, samples: int = 2, timeout: float = 10) -> None:
    """Wait until the sensor has read `pin` `samples` more times. Two reads after a change mean a whole sample
    of the new level went by: read, averaged, and its events (when_motion) fired before the next read."""
    start = pin.reads
    wait_until(lambda: pin.reads >= start + samples, timeout, f"gpiozero to sample pin {pin.info.name} {samples}×")
