"""Every MQTT topic the unit uses, in one place (docs/EVENTS.md describes the tree)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Topics:
    prefix: str
    site: str
    checkpoint: str
    device: str

    @property
    def base(self) -> str:
        return f"{self.prefix}/{self.site}/{self.checkpoint}/{self.device}"

    @property
    def status(self) -> str:  # retained "online" / "offline" (also the last will)
        return f"{self.base}/status"

    @property
    def events(self) -> str:  # one sighting event per burst, QoS 1
        return f"{self.base}/events"

    @property
    def health(self) -> str:  # retained, periodic
        return f"{self.base}/health"

    @property
    def trigger(self) -> str:  # subscribed: any message starts a burst
        return f"{self.base}/cmd/trigger"
