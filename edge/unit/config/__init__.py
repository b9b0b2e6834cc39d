"""A unit's configuration: its sections (`*Config`) and how a YAML file becomes them.

Light on purpose (pydantic and YAML only): `deploy` on a laptop and `install-config` on a unit check a
config with it, without the unit's camera or vision parts.
"""

from edge.core.errors import ConfigError
from edge.unit.config import sections
from edge.unit.config.sections import (
    NAME,
    BurstConfig,
    ClockConfig,
    Config,
    DetectorConfig,
    FaceHashConfig,
    HogDetectorConfig,
    HogYunetDetectorConfig,
    ImagesSourceConfig,
    IntervalTriggerConfig,
    LoggingConfig,
    ManualTriggerConfig,
    MotionTriggerConfig,
    MqttConfig,
    OutboxConfig,
    Picamera2SourceConfig,
    PirTriggerConfig,
    SourceConfig,
    TriggerConfig,
    UnitConfig,
    VideoSourceConfig,
    VisionConfig,
    WebcamSourceConfig,
    YunetDetectorConfig,
    unit_memory,
)
from edge.unit.config.yaml_file import MAX_BYTES, fingerprint, fingerprint_of, load, parse, read_bytes, read_text

__all__ = [
    "MAX_BYTES",
    "NAME",
    "BurstConfig",
    "ClockConfig",
    "Config",
    "ConfigError",
    "DetectorConfig",
    "FaceHashConfig",
    "HogDetectorConfig",
    "HogYunetDetectorConfig",
    "ImagesSourceConfig",
    "IntervalTriggerConfig",
    "LoggingConfig",
    "ManualTriggerConfig",
    "MotionTriggerConfig",
    "MqttConfig",
    "OutboxConfig",
    "Picamera2SourceConfig",
    "PirTriggerConfig",
    "SourceConfig",
    "TriggerConfig",
    "UnitConfig",
    "VideoSourceConfig",
    "VisionConfig",
    "WebcamSourceConfig",
    "YunetDetectorConfig",
    "fingerprint",
    "fingerprint_of",
    "load",
    "parse",
    "read_bytes",
    "read_text",
    "sections",
    "unit_memory",
]
