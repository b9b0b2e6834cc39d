"""The daemon's YAML configuration: one strict pydantic model, errors that name the field.

Every section rejects unknown keys and bounds its values; the descriptions double as the reference
(config/example.yaml). Files the daemon needs (key, TLS, password) are checked when the file is loaded,
so a technician learns of a bad path from `traceon-edge check-config`, not at the first sighting.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from edge.core.errors import TraceonError

EX_CONFIG = 78  # sysexits.h: configuration error
NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
MAX_BYTES = 256 * 1024  # a config is a page of text; anything larger is a mistake or an attack
MAX_DEPTH = 12  # nesting of YAML mappings and lists (a config needs 3)
BASELINE_BYTES = 400 * 2**20  # the interpreter, the models and the libraries, measured about 300 MB


class ConfigError(TraceonError, ValueError):
    """A configuration that cannot be used; the message lists every problem, one per line."""


def _beside_config(path: Path, info: ValidationInfo) -> Path:
    """Relative paths in a config file are relative to the file, as a technician expects."""
    base = (info.context or {}).get("base")
    return path if path.is_absolute() or base is None else (Path(base) / path).resolve()


ConfigPath = Annotated[Path, AfterValidator(_beside_config)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _checking_files(info: ValidationInfo) -> bool:
    """False when a config is checked away from its unit (`deploy` on a laptop): its files live on the unit."""
    return (info.context or {}).get("check_files", True)


def _readable(path: Path, what: str, info: ValidationInfo) -> Path:
    """A regular file this user can read (a FIFO or a device would hang or mislead the reader)."""
    if not _checking_files(info):
        return path
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise ValueError(f"{what} {path} is not a regular file")
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        os.close(fd)
    except OSError as e:
        raise ValueError(f"{what} {path} cannot be read: {e.strerror}") from None
    return path


def _private(path: Path, what: str, info: ValidationInfo) -> Path:
    """A secret: also owned by this user or root, mode 0600, in a folder nobody else can write."""
    from edge.core.private_files import PrivateFileError, check

    if not _checking_files(info):
        return path
    try:
        return check(path, what)
    except PrivateFileError as e:
        raise ValueError(str(e)) from None


class Unit(Section):
    site: str = Field(pattern=NAME, description="Site name, e.g. a building; used in MQTT topics")
    checkpoint: str = Field(pattern=NAME, description="Checkpoint at the site, e.g. a doorway")
    device: str = Field(pattern=NAME, description="This unit's id, unique within the checkpoint")


class PirTrigger(Section):
    kind: Literal["pir"] = "pir"
    pin: int | str = Field(17, description="GPIO pin of the PIR sensor's output (BCM number or name like 'GPIO17')")
    queue_len: int = Field(1, ge=1, le=100, description="Samples averaged by gpiozero before deciding")
    threshold: float = Field(0.5, ge=0.0, le=1.0, description="Fraction of samples that must read 'motion'")


class MotionTrigger(Section):
    kind: Literal["motion"] = "motion"
    changed: float = Field(0.02, gt=0, le=1, description="Fraction of pixels that must change between checks")
    check_every: float = Field(0.25, ge=0.05, le=10, description="Seconds between motion checks")


class IntervalTrigger(Section):
    kind: Literal["interval"] = "interval"
    seconds: float = Field(10.0, ge=0.5, le=86400, description="A burst every this many seconds")


class ManualTrigger(Section):
    kind: Literal["manual"] = "manual"


Trigger = Annotated[PirTrigger | MotionTrigger | IntervalTrigger | ManualTrigger, Field(discriminator="kind")]


class Picamera2Source(Section):
    kind: Literal["picamera2"] = "picamera2"
    width: int = Field(1280, ge=160, le=4608)
    height: int = Field(720, ge=120, le=3496)


class WebcamSource(Section):
    kind: Literal["webcam"] = "webcam"
    device: int | str = Field(0, description="OpenCV device index, or a path such as /dev/video0")
    width: int = Field(1280, ge=160, le=4096)
    height: int = Field(720, ge=120, le=2160)


class VideoSource(Section):
    kind: Literal["video"] = "video"
    path: ConfigPath = Field(description="A recorded video file")
    realtime: bool = Field(True, description="Play at the file's own frame rate (false: as fast as possible)")
    loop: bool = Field(False, description="Start again at the end")

    @field_validator("path")
    @classmethod
    def _exists(cls, path: Path, info: ValidationInfo) -> Path:
        return _readable(path, "video file", info)


class ImagesSource(Section):
    kind: Literal["images"] = "images"
    path: ConfigPath = Field(description="A folder of images, read in name order")
    loop: bool = False

    @field_validator("path")
    @classmethod
    def _is_dir(cls, path: Path, info: ValidationInfo) -> Path:
        if not _checking_files(info):
            return path
        try:
            if not stat.S_ISDIR(os.stat(path).st_mode):
                raise ValueError(f"{path} is not a folder")
        except OSError as e:  # on 3.11, Path.is_dir() raises for a folder this user may not enter
            raise ValueError(f"the images folder {path} cannot be reached by this user: {e.strerror}") from None
        return path


Source = Annotated[Picamera2Source | WebcamSource | VideoSource | ImagesSource, Field(discriminator="kind")]


class Burst(Section):
    frames: int = Field(10, ge=1, le=60, description="Frames captured per burst")
    duration: float = Field(1.0, ge=0.05, le=30, description="Seconds the frames are spread over")
    cooldown: float = Field(3.0, ge=0, le=600, description="Seconds after a burst during which triggers coalesce")
    queue: int = Field(
        3, ge=1, le=20, description="Captured bursts that wait while vision is busy with one; more are dropped "
        "(counted in health). Each holds its frames in memory"
    )  # fmt: skip


class HogDetector(Section):
    kind: Literal["hog"] = "hog"


class YunetDetector(Section):
    kind: Literal["yunet"] = "yunet"
    min_score: float = Field(0.8, ge=0.3, le=0.99, description="YuNet's confidence below which a box is not a face")


class HogYunetDetector(YunetDetector):
    kind: Literal["hog+yunet"] = "hog+yunet"  # type: ignore[assignment]


Detector = Annotated[HogDetector | YunetDetector | HogYunetDetector, Field(discriminator="kind")]


class Vision(Section):
    detector: Detector = Field(
        default=HogYunetDetector(),
        description="`hog`, `yunet`, or `hog+yunet`: HOG's faces plus those only YuNet finds (the default: "
        "on lfw_dev it leaves no photo without a face, HOG alone 20)",
    )
    working_width: int = Field(640, ge=160, le=4096, description="Detection runs on a copy at most this wide (px)")
    upsample: int = Field(0, ge=0, le=3, description="HOG upsampling steps (each finds faces half as large, 4× slower)")
    threads: int = Field(2, ge=1, le=8, description="Interpreter threads for the embedder")
    workers: int = Field(
        2, ge=1, le=8, description="Threads that find the faces of a burst's frames at once: one per core "
        "(a Raspberry Pi 4 or 5 has 4)"
    )  # fmt: skip
    search_every: int = Field(
        3, ge=1, le=100, description="Search every this many frames of a burst whole; in the frames between, "
        "look only near the faces found (a quarter of the time). A face that comes into view in between is "
        "found at the next whole search; 1 searches every frame whole, as an `images` source always does"
    )  # fmt: skip
    min_face_size: int = Field(60, ge=20, le=2000, description="Faces narrower than this (px) are counted, not hashed")


class FaceHashSection(Section):
    key_file: ConfigPath = Field(description="The deployment's FaceHash key (mode 0600; `traceon-edge keygen`)")
    bits: Literal[128, 256, 384, 512, 640, 768, 896, 1024] = Field(1024, description="FaceHash length")

    @field_validator("key_file")
    @classmethod
    def _key(cls, path: Path, info: ValidationInfo) -> Path:
        from edge.core.facehash import load_key

        if not _checking_files(info):
            return path
        try:
            load_key(path)
        except TraceonError as e:
            raise ValueError(str(e)) from None
        return path


class Tls(Section):
    ca_file: ConfigPath = Field(description="CA certificate that signed the broker's certificate")
    cert_file: ConfigPath | None = Field(None, description="Client certificate, for mutual TLS")
    key_file: ConfigPath | None = Field(None, description="Client private key, for mutual TLS")

    @field_validator("ca_file", "cert_file")
    @classmethod
    def _files(cls, path: Path | None, info) -> Path | None:
        return path if path is None else _readable(path, info.field_name.replace("_", " "), info)

    @field_validator("key_file")
    @classmethod
    def _key(cls, path: Path | None, info) -> Path | None:
        return path if path is None else _private(path, "TLS private key", info)

    @model_validator(mode="after")
    def _pair(self) -> Tls:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("mutual TLS needs both cert_file and key_file")
        return self


class Mqtt(Section):
    host: str = Field("localhost", min_length=1)
    port: int = Field(1883, ge=1, le=65535)
    tls: Tls | None = None
    username: str | None = None
    password_file: ConfigPath | None = Field(None, description="File holding the password (keep it mode 0600)")
    client_id: str | None = Field(None, description="Default: traceon-<site>-<checkpoint>-<device>")
    topic_prefix: str = Field("traceon", pattern=r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$")
    keepalive: int = Field(30, ge=5, le=3600, description="Seconds; a dead link is noticed after about 1.5× this")
    health_every: float = Field(30.0, ge=1, le=3600, description="Seconds between retained health messages")
    in_flight: int = Field(
        20, ge=1, le=100, description="Events sent before the oldest is acknowledged: a round trip per window, not "
        "per event, when a backlog drains (each is still deleted only after its PUBACK)"
    )  # fmt: skip

    @field_validator("password_file")
    @classmethod
    def _password(cls, path: Path | None, info: ValidationInfo) -> Path | None:
        return path if path is None else _private(path, "password file", info)


class Outbox(Section):
    path: ConfigPath = Field(
        Path("/var/lib/traceon-edge/outbox.sqlite"), description="SQLite file of undelivered events"
    )
    max_events: int = Field(100_000, ge=10, le=10_000_000)
    max_bytes: int = Field(100_000_000, ge=100_000, le=10_000_000_000)
    when_full: Literal["drop_oldest", "drop_newest"] = Field(
        "drop_oldest", description="Which event gives way when the outbox is full (counted in health)"
    )


class Logging(Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class Clock(Section):
    hold_unsynchronized: float = Field(
        0,
        ge=0,
        le=3600,
        description="Seconds an event made while the system clock is not synchronised waits for it (so that it "
        "can be re-stamped) before it is sent marked `unsynchronized`; 0 sends it at once, marked",
    )


class Config(Section):
    unit: Unit
    trigger: Trigger = PirTrigger()
    source: Source = Picamera2Source()
    burst: Burst = Burst()
    vision: Vision = Vision()
    facehash: FaceHashSection
    mqtt: Mqtt = Mqtt()
    outbox: Outbox = Outbox()
    logging: Logging = Logging()
    clock: Clock = Clock()

    @model_validator(mode="after")
    def _fits_in_memory(self, info: ValidationInfo) -> Config:
        """Frames of the bursts in flight must fit this unit's memory (checked on the unit, not on a laptop)."""
        if not _checking_files(info) or self.source.kind not in ("picamera2", "webcam"):
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


def _describe(error: dict) -> str:
    parts = [str(p) for p in error["loc"]]
    for tagged in (["trigger"], ["source"], ["vision", "detector"]):  # the kind's tag: `trigger.pin`, not
        if len(parts) > len(tagged) + 1 and parts[: len(tagged)] == tagged:  # `trigger.pir.pin`
            del parts[len(tagged)]
    where = ".".join(parts)
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown key (misspelt, or in the wrong section?)"
    given = error.get("input")
    shown = "" if isinstance(given, dict) or error["type"] == "missing" else f" (got {given!r})"
    return f"  {where or '(top level)'}: {message}{shown}"


class BoundedLoader(yaml.SafeLoader):
    """YAML without aliases (a few lines of them expand to gigabytes) and with bounded nesting."""

    def __init__(self, stream):
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, f"aliases (*{event.anchor}) are not allowed in a traceon-edge config", event.start_mark
            )
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise yaml.composer.ComposerError(None, None, f"nested deeper than {MAX_DEPTH} levels", mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def parse(text: str, origin: str = "<config>", base: Path | None = None, check_files: bool = True) -> Config:
    if len(text) > MAX_BYTES:
        raise ConfigError(f"{origin} is {len(text):,} characters long: a config is at most {MAX_BYTES:,}")
    try:
        data = yaml.load(text, Loader=BoundedLoader)
    except RecursionError:
        raise ConfigError(f"{origin} is nested too deeply to be a traceon-edge config") from None
    except ValueError as e:  # a value YAML parses but Python refuses, such as a 100,000-digit number
        raise ConfigError(f"{origin} holds a value that cannot be read: {str(e)[:200]}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{origin} is not valid YAML{at}: {getattr(e, 'problem', e)}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{origin} must be a YAML mapping of sections (unit, trigger, source, ...)")
    try:
        return Config.model_validate(data, context={"base": base, "check_files": check_files})
    except ValidationError as e:
        lines = [_describe(err) for err in e.errors()]
        raise ConfigError(f"{origin} has {len(lines)} problem(s):\n" + "\n".join(lines)) from None


def load(path: Path) -> Config:
    return parse(read_text(path), str(path), path.resolve().parent)


def read_text(path: Path) -> str:
    """A config file's text: a regular file, at most MAX_BYTES, UTF-8 (never blocks on a FIFO)."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise ConfigError(f"config file {path} is not a regular file")
        with open(os.open(path, os.O_RDONLY | os.O_NONBLOCK), "rb") as f:
            data = f.read(MAX_BYTES + 1)
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror}") from None
    if len(data) > MAX_BYTES:
        raise ConfigError(f"config file {path} is larger than {MAX_BYTES:,} bytes: that is not a traceon-edge config")
    try:
        return data.decode()
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not UTF-8 text") from None


def fingerprint(path: Path) -> str:
    """Short checksum of the config file as written: health reports it so a deploy can see it applied."""
    return fingerprint_of(path.read_bytes())


def fingerprint_of(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()[:16]
