"""Where the checkout and the real photos are (../shared/data beside the checkout)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"


def need_data(*parts: str) -> Path:
    """The real photos; absent in a clone elsewhere (a skip), never in CI (a failure: CI has ../shared)."""
    path = DATA.joinpath(*parts)
    if not path.exists():
        why = f"{path} is absent: the real photos live in ../shared/data beside the checkout"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{why}, and CI=true: CI must run every test on them")
        pytest.skip(why)
    return path


def face_photos() -> list[Path]:
    """Every sample photo of faces/ (one face each), in a fixed order."""
    return sorted(p for p in need_data("faces").rglob("*") if p.is_file())
