"""What every settings model shares: strict sections, paths beside their file, files checked when loaded.

A unit's YAML config and the tracer's broker options are validated the same way, and their problems are
worded the same way: one line per problem, naming the field (or the option) and what was given.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError, ValidationInfo

from edge.core import files
from edge.core.errors import ConfigError, PrivateFileError


class Section(BaseModel):
    """A strict section: unknown keys are refused (a misspelt key must not be silently ignored)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _beside_config(path: Path, info: ValidationInfo) -> Path:
    """Relative paths in a config file are relative to the file, as a technician expects."""
    base = (info.context or {}).get("base")
    return path if path.is_absolute() or base is None else (Path(base) / path).resolve()


ConfigPath = Annotated[Path, AfterValidator(_beside_config)]


def checking_files(info: ValidationInfo) -> bool:
    """False when a config is checked away from its unit (`deploy` on a laptop): its files live on the unit."""
    return (info.context or {}).get("check_files", True)


def readable(path: Path, what: str, info: ValidationInfo) -> Path:
    """A regular file this user can read (a FIFO or a device would hang or mislead the reader)."""
    if not checking_files(info):
        return path
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise ValueError(f"{what} {path} is not a regular file")
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        os.close(fd)
    except OSError as e:
        raise ValueError(f"{what} {path} cannot be read: {e.strerror}") from None
    return path


def file_or_place_for_one(path: Path, what: str, info: ValidationInfo) -> Path:
    """A regular file, or a path where the program can make one: it makes missing folders, so the nearest
    existing one must be a folder (a FIFO or /dev/full would take the writes and the daemon would end)."""
    if not checking_files(info):
        return path
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):  # not there yet: the daemon makes it
        mode = None
    except OSError as e:
        raise ValueError(f"{what} {path} cannot be looked at: {e.strerror}") from None
    if mode is not None:
        if stat.S_ISREG(mode):
            return path
        example = path / "outbox.sqlite" if stat.S_ISDIR(mode) else path.with_suffix(".sqlite")
        raise ValueError(f"{what} {path} is {files.kind(mode)}: name a file the daemon may make, e.g. {example}")
    place = path.parent
    while not place.exists() and place != place.parent:
        place = place.parent
    if not place.is_dir():
        raise ValueError(f"{what} {path} cannot be made: {place} is {files.kind(os.stat(place).st_mode)}, not a folder")
    return path


def private(path: Path, what: str, info: ValidationInfo) -> Path:
    """A secret: also owned by this user or root, mode 0600, in a folder nobody else can write."""
    from edge.core.private_files import check

    if not checking_files(info):
        return path
    try:
        return check(path, what)
    except PrivateFileError as e:
        raise ValueError(str(e)) from None


def problem(error: dict, where: str, show_given: bool = True) -> str:
    """One line for one pydantic error at `where` (a field path or an option)."""
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown key (misspelt, or in the wrong section?)"
    given = error.get("input")
    hidden = not show_given or isinstance(given, dict) or error["type"] == "missing"
    return f"  {where}: {message}" + ("" if hidden else f" (got {given!r})")


def refuse(origin: str, error: ValidationError, where: Callable[[tuple], str], show_given: bool = True) -> ConfigError:
    """A ConfigError listing every problem of `origin`, each placed by `where(loc)`."""
    lines = [problem(e, where(e["loc"]), show_given) for e in error.errors()]
    return ConfigError(f"{origin} has {len(lines)} problem(s):\n" + "\n".join(lines))
