"""A disk that can be filled: the outbox's full-disk faults."""

from __future__ import annotations

from pathlib import Path


def fill(disk: Path) -> Path:
    """Fill the disk to the last byte; the filler's path (delete it to free the disk)."""
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as f:
        for size in (65536, 1):
            try:
                while f.write(b"\0" * size):
                    pass
            except OSError:
                pass
    return filler
