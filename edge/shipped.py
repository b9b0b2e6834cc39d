"""Where the shipped model and calibration files live (no vision code: the tracer's side reads them too)."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def models_dir() -> Path:
    """TRACEON_MODELS_DIR, else the checkout's models/, else the installed share/traceon-edge/models."""
    if env := os.environ.get("TRACEON_MODELS_DIR"):
        return Path(env)
    checkout = Path(__file__).resolve().parents[1]
    if (checkout / "pyproject.toml").is_file() and (checkout / "models").is_dir():
        return checkout / "models"
    return Path(sys.prefix) / "share" / "traceon-edge" / "models"
