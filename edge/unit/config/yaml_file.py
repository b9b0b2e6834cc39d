"""Reading a unit's YAML config: bounded, strict, every problem named by its field.

A config arrives from a technician's laptop (`deploy`), so it is read as hostile: at most MAX_BYTES, no
YAML aliases, bounded nesting, never blocking on a FIFO; then validated by the sections' strict models.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import yaml
from pydantic import ValidationError

from edge.core import files
from edge.core.errors import ConfigError
from edge.core.settings import refuse
from edge.unit.config.sections import Config

MAX_BYTES = 256 * 1024  # a config is a page of text; anything larger is a mistake or an attack
MAX_DEPTH = 12  # nesting of YAML mappings and lists (a config needs 3)
TAGGED = (["trigger"], ["source"], ["vision", "detector"])  # sections chosen by `kind`


def _field(loc: tuple) -> str:
    """A field's path as a technician writes it: `trigger.pin`, not the kind's tag `trigger.pir.pin`."""
    parts = [str(p) for p in loc]
    for tagged in TAGGED:
        if len(parts) > len(tagged) + 1 and parts[: len(tagged)] == tagged:
            del parts[len(tagged)]
    return ".".join(parts) or "(top level)"


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
        raise refuse(origin, e, _field) from None


def load(path: Path) -> Config:
    return parse(read_text(path), str(path), path.resolve().parent)


def read_bytes(path: Path) -> bytes:
    """A config file as written: a regular file of at most MAX_BYTES (never blocks on a FIFO)."""
    try:
        return files.read_regular(path, MAX_BYTES, "a traceon-edge config")
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror}") from None
    except ValueError as e:
        raise ConfigError(f"config file {path} is {e}") from None


def read_text(path: Path) -> str:
    """A config file's text: read_bytes, as UTF-8."""
    data = read_bytes(path)
    try:
        return data.decode()
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not UTF-8 text") from None


def fingerprint(path: Path) -> str:
    """Short checksum of the config file as written: health reports it so a deploy can see it applied."""
    return fingerprint_of(read_bytes(path))


def fingerprint_of(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()[:16]
