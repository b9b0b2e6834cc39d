"""The sections of a unit's configuration (`*Config`, so that none shares a name with the part it configures).

Every section rejects unknown keys and bounds its values; the descriptions double as the reference
(docs/CONFIG.md). Files the daemon needs (key, TLS, password) are checked when the file is loaded,
so a technician learns of a bad path from `traceon-edge check-config`, not at the first sighting.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from edge.core.broker import BrokerConfig
from edge.core.errors import TraceonError
from edge.core.settings import ConfigPath, Section, checking_files, file_or_place_for_one, readable

NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
BASELINE_BYTES = 400 * 2**20  # the interpreter, the models and the libraries, measured about 300 MB


class UnitConfig(Section):
    site: str = Field(pattern=NAME, description="Site name, e.g. a building; used in MQTT topics")
    checkpoint: str = Field(pattern=NAME, description="Checkpoint at the site, e.g. a doorway")
    device: str = Field(pattern=NAME, description="This unit's id, unique within the checkpoint")


class PirTriggerConfig(Section):
    kind: Literal["pir"] = "pir"
    pin: int | str = Field(17, description="GPIO pin of the PIR sensor's output (BCM number or name like 'GPIO17')")
    queue_len: int = Field(1, ge=1, le=100, description="Samples averaged by gpiozero before deciding")
    threshold: float = Field(0.5, ge=0.0, le=1.0, description="Fraction of samples that must read 'motion'")


class MotionTriggerConfig(Section):
    kind: Literal["motion"] = "motion"
    changed: float = Field(0.02, gt=0, le=1, description="Fraction of pixels that must change between checks")
    check_every: float = Field(0.25, ge=0.05, le=10, description="Seconds between motion checks")


class IntervalTriggerConfig(Section):
    kind: Literal["interval"] = "interval"
    seconds: float = Field(10.0, ge=0.5, le=86400, description="A burst every this many seconds")


class ManualTriggerConfig(Section):
    kind: Literal["manual"] = "manual"


TriggerConfig = Annotated[
    PirTriggerConfig | MotionTriggerConfig | IntervalTriggerConfig | ManualTriggerConfig, Field(discriminator="kind")
]


class Picamera2SourceConfig(Section):
    kind: Literal["picamera2"] = "picamera2"
    width: int = Field(1280, ge=160, le=4608)
    height: int = Field(720, ge=120, le=3496)


class WebcamSourceConfig(Section):
    kind: Literal["webcam"] = "webcam"
    device: int | str = Field(0, description="OpenCV device index, or a path such as /dev/video0")
    width: int = Field(1280, ge=160, le=4096)
    height: int = Field(720, ge=120, le=2160)


class VideoSourceConfig(Section):
    kind: Literal["video"] = "video"
    path: ConfigPath = Field(description="A recorded video file")
    realtime: bool = Field(True, description="Play at the file's own frame rate (false: as fast as possible)")
    loop: bool = Field(False, description="Start again at the end")

    @field_validator("path")
    @classmethod
    def _exists(cls, path: Path, info: ValidationInfo) -> Path:
        return readable(path, "video file", info)


class ImagesSourceConfig(Section):
    kind: Literal["images"] = "images"
    path: ConfigPath = Field(description="A folder of images, read in name order")
    loop: bool = False

    @field_validator("path")
    @classmethod
    def _is_dir(cls, path: Path, info: ValidationInfo) -> Path:
        if not checking_files(info):
            return path
        try:
            if not stat.S_ISDIR(os.stat(path).st_mode):
                raise ValueError(f"{path} is not a folder")
        except OSError as e:  # on 3.11, Path.is_dir() raises for a folder this user may not enter
            raise ValueError(f"the images folder {path} cannot be reached by this user: {e.strerror}") from None
        return path


SourceConfig = Annotated[
    Picamera2SourceConfig | WebcamSourceConfig | VideoSourceConfig | ImagesSourceConfig, Field(discriminator="kind")
]


class BurstConfig(Section):
    frames: int = Field(10, ge=1, le=60, description="Frames captured per burst")
    duration: float = Field(1.0, ge=0.05, le=30, description="Seconds the frames are spread over")
    cooldown: float = Field(3.0, ge=0, le=600, description="Seconds after a burst during which triggers coalesce")
    queue: int = Field(
        3,
        ge=1,
        le=20,
        description="Captured bursts that wait while vision is busy with one; more are dropped "
        "(counted in health). Each holds its frames in memory",
    )


class HogDetectorConfig(Section):
    kind: Literal["hog"] = "hog"


class YunetDetectorConfig(Section):
    kind: Literal["yunet"] = "yunet"
    min_score: float = Field(0.8, ge=0.3, le=0.99, description="YuNet's confidence below which a box is not a face")


class HogYunetDetectorConfig(YunetDetectorConfig):
    kind: Literal["hog+yunet"] = "hog+yunet"  # type: ignore[assignment]


DetectorConfig = Annotated[
    HogDetectorConfig | YunetDetectorConfig | HogYunetDetectorConfig, Field(discriminator="kind")
]


class VisionConfig(Section):
    detector: DetectorConfig = Field(
        default=HogYunetDetectorConfig(),
        description="`hog`, `yunet`, or `hog+yunet`: HOG's faces plus those only YuNet finds (the default: "
        "on lfw_dev it leaves no photo without a face, HOG alone 20)",
    )
    working_width: int = Field(640, ge=160, le=4096, description="Detection runs on a copy at most this wide (px)")
    upsample: int = Field(0, ge=0, le=3, description="HOG upsampling steps (each finds faces half as large, 4× slower)")
    threads: int = Field(2, ge=1, le=8, description="Interpreter threads for the embedder")
    workers: int = Field(
        2,
        ge=1,
        le=8,
        description="Threads that find the faces of a burst's frames at once: one per core "
        "(a Raspberry Pi 4 or 5 has 4)",
    )
    search_every: int = Field(
        3,
        ge=1,
        le=100,
        description="Search every this many frames of a burst whole; in the frames between, "
        "look only near the faces found (a quarter of the time). A face that comes into view in between is "
        "found at the next whole search; 1 searches every frame whole, as an `images` source always does",
    )
    min_face_size: int = Field(60, ge=20, le=2000, description="Faces narrower than this (px) are counted, not hashed")


class FaceHashConfig(Section):
    key_file: ConfigPath = Field(
        description="The deployment's FaceHash key, or key chain that moves forward each epoch (mode 0600; "
        "`traceon-edge keygen [--epoch 1d|7d]`). A chain file is rewritten in place as it moves: the daemon's "
        "user must be able to write its folder"
    )
    scheme: Literal["fh1", "fh2"] = Field(
        "fh2",
        description="FaceHash scheme the unit publishes: fh2 (a keyed rotation of the embedding, 8 bits a "
        "coordinate, compared by Euclidean distance: keeps the embedding's accuracy at the false-accept rates a "
        "trace works at) or fh1 (1,024 thermometer bits compared by Hamming distance, for tracers that read fh1 "
        "only). Both use the same key",
    )
    bits: Literal[128, 256, 384, 512, 640, 768, 896, 1024] = Field(
        1024, description="FaceHash length, fh1 only (an fh2 code is always 1,024 bits: 128 bytes)"
    )

    @field_validator("bits")
    @classmethod
    def _fh2_is_1024_bits(cls, bits: int, info: ValidationInfo) -> int:
        scheme = info.data.get("scheme")  # validated before bits (declared first)
        if scheme == "fh2" and bits != 1024:
            raise ValueError(
                "lengths other than 1024 are for scheme fh1 only (an fh2 FaceHash is always 1024 bits): drop "
                "facehash.bits, or set facehash.scheme: fh1 (the schemes: fh1, fh2)"
            )
        return bits

    @field_validator("key_file")
    @classmethod
    def _key(cls, path: Path, info: ValidationInfo) -> Path:
        from edge.core import keychain

        if not checking_files(info):
            return path
        try:
            keychain.load(path)
        except TraceonError as e:
            raise ValueError(str(e)) from None
        return path


class MqttConfig(BrokerConfig):
    """The broker settings every client shares (edge.core.broker), and the unit's own."""

    client_id: str | None = Field(None, description="Default: traceon-<site>-<checkpoint>-<device>")
    keepalive: int = Field(30, ge=5, le=3600, description="Seconds; a dead link is noticed after about 1.5× this")
    health_every: float = Field(30.0, ge=1, le=3600, description="Seconds between retained health messages")
    in_flight: int = Field(
        20,
        ge=1,
        le=100,
        description="Events sent before the oldest is acknowledged: a round trip per window, not "
        "per event, when a backlog drains (each is still deleted only after its PUBACK)",
    )


class OutboxConfig(Section):
    path: ConfigPath = Field(
        Path("/var/lib/traceon-edge/outbox.sqlite"), description="SQLite file of undelivered events"
    )
    max_events: int = Field(100_000, ge=10, le=10_000_000)
    max_bytes: int = Field(100_000_000, ge=100_000, le=10_000_000_000)
    when_full: Literal["drop_oldest", "drop_newest"] = Field(
        "drop_oldest", description="Which event gives way when the outbox is full (counted in health)"
    )

    @field_validator("path")
    @classmethod
    def _a_file(cls, path: Path, info: ValidationInfo) -> Path:
        return file_or_place_for_one(path, "outbox file", info)


class LoggingConfig(Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class ClockConfig(Section):
    hold_unsynchronized: float = Field(
        0,
        ge=0,
        le=3600,
        description="Seconds an event made while the system clock is not synchronised waits for it (so that it "
        "can be re-stamped) before it is sent marked `unsynchronized`; 0 sends it at once, marked",
    )


class Config(Section):
    unit: UnitConfig
    trigger: TriggerConfig = PirTriggerConfig()
    source: SourceConfig = Picamera2SourceConfig()
    burst: BurstConfig = BurstConfig()
    vision: VisionConfig = VisionConfig()
    facehash: FaceHashConfig
    mqtt: MqttConfig = MqttConfig()
    outbox: OutboxConfig = OutboxConfig()
    logging: LoggingConfig = LoggingConfig()
    clock: ClockConfig = ClockConfig()

    @model_validator(mode="after")
    def _fits_in_memory(self, info: ValidationInfo) -> Config:
        """Frames of the bursts in flight must fit this unit's memory (checked on the unit, not on a laptop)."""
        if not checking_files(info) or self.source.kind not in ("picamera2", "webcam"):
            return self
        bursts = self.burst.queue + 2  # one being captured, the queue, one in vision
        needed = bursts * self.burst.frames * self.source.width * self.source.height * 3 + BASELINE_BYTES
        total = unit_memory()
        if total and needed > 0.75 * total:
            raise ValueError(
                f"burst.frames × source.width × source.height needs about {needed / 2**30:.1f} GB of memory "
                f"({bursts} bursts of {self.burst.frames} frames of {self.source.width}×"
                f"{self.source.height} in flight), more than 3/4 of this unit's {total / 2**30:.1f} GB: lower "
                "burst.frames, burst.queue or the resolution"
            )
        return self


def unit_memory() -> int | None:
    with contextlib.suppress(ValueError, OSError):
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return None
