"""Every MQTT topic the unit uses, in one place (docs/EVENTS.md describes the tree)."""

from __future__ import annotations

import re
from dataclasses import dataclass

# What a site, checkpoint or device may be called (the config and the event schema say the same): a topic
# that names anything else is no unit's, so its text never reaches a log line, a screen or a store as a name.
UNIT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", re.ASCII)


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


def events_filter(prefix: str, share: str | None = None) -> str:
    """Every unit's events; in an MQTT 5 shared subscription group if `share` (its members split the load)."""
    topic = f"{prefix}/+/+/+/events"
    return f"$share/{share}/{topic}" if share else topic


def unit_of(topic: str, prefix: str) -> tuple[str, str, str, str] | None:
    """(site, checkpoint, device, kind) of a unit's topic under `prefix`, or None for any other topic
    (one whose site, checkpoint or device is not a unit's name among them)."""
    if not topic.startswith(prefix + "/"):
        return None
    parts = topic[len(prefix) + 1 :].split("/")
    if len(parts) != 4 or not all(UNIT_NAME.fullmatch(name) for name in parts[:3]):
        return None
    site, checkpoint, device, kind = parts
    return site, checkpoint, device, kind
