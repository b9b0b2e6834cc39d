"""The daemon's YAML configuration: one strict pydantic model, errors that name the field.

Every section rejects unknown keys and bounds its values; the descriptions double as the reference
(config/example.yaml). Files the daemon needs (key, TLS, password) are checked when the file is loaded,
so a technician learns of a bad path from `traceon-edge check-config`, not at the first sighting.
"""

from __future__ import annotations

import hashlib
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

from edge.errors import TraceonError

EX_CONFIG = 78  # sysexits.h: configuration error
NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


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
    if not _checking_files(info):
        return path
    try:
        with open(path, "rb"):
            pass
    except OSError as e:
        raise ValueError(f"{what} {path} cannot be read: {e.strerror}") from None
    return path


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
        if _checking_files(info) and not path.is_dir():
            raise ValueError(f"{path} is not a folder")
        return path


Source = Annotated[Picamera2Source | WebcamSource | VideoSource | ImagesSource, Field(discriminator="kind")]


class Burst(Section):
    frames: int = Field(10, ge=1, le=60, description="Frames captured per burst")
    duration: float = Field(1.0, ge=0.05, le=30, description="Seconds the frames are spread over")
    cooldown: float = Field(3.0, ge=0, le=600, description="Seconds after a burst during which triggers coalesce")


class Vision(Section):
    working_width: int = Field(640, ge=160, le=4096, description="Detection runs on a copy at most this wide (px)")
    upsample: int = Field(0, ge=0, le=3, description="HOG upsampling steps (each finds faces half as large, 4× slower)")
    threads: int = Field(2, ge=1, le=8, description="Interpreter threads for the embedder")
    min_face_size: int = Field(60, ge=20, le=2000, description="Faces narrower than this (px) are counted, not hashed")


class FaceHashSection(Section):
    key_file: ConfigPath = Field(description="The deployment's FaceHash key (mode 0600; `traceon-edge keygen`)")
    bits: Literal[128, 256, 384, 512, 640, 768, 896, 1024] = Field(1024, description="FaceHash length")

    @field_validator("key_file")
    @classmethod
    def _key(cls, path: Path, info: ValidationInfo) -> Path:
        from edge.facehash import load_key

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

    @field_validator("ca_file", "cert_file", "key_file")
    @classmethod
    def _files(cls, path: Path | None, info) -> Path | None:
        return path if path is None else _readable(path, info.field_name.replace("_", " "), info)

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

    @field_validator("password_file")
    @classmethod
    def _password(cls, path: Path | None, info: ValidationInfo) -> Path | None:
        return path if path is None else _readable(path, "password file", info)


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


def _describe(error: dict) -> str:
    parts = [str(p) for p in error["loc"]]
    if len(parts) > 2 and parts[0] in ("trigger", "source"):
        del parts[1]  # the kind's tag: `trigger.pin`, not `trigger.pir.pin`
    where = ".".join(parts)
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown key (misspelt, or in the wrong section?)"
    given = error.get("input")
    shown = "" if isinstance(given, dict) or error["type"] == "missing" else f" (got {given!r})"
    return f"  {where or '(top level)'}: {message}{shown}"


def parse(text: str, origin: str = "<config>", base: Path | None = None, check_files: bool = True) -> Config:
    try:
        data = yaml.safe_load(text)
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
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror}") from None
    return parse(text, str(path), path.resolve().parent)


def fingerprint(path: Path) -> str:
    """Short checksum of the config file as written: health reports it so a deploy can see it applied."""
    return fingerprint_of(path.read_bytes())


def fingerprint_of(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()[:16]
