"""Fixtures of the unit's tests."""

from __future__ import annotations

import pytest

from edge.core import facehash


@pytest.fixture
def files(tmp_path):
    """A folder with what a config names: an images folder and a private key (support.unit_config.config_text)."""
    (tmp_path / "images").mkdir()
    key = tmp_path / "unit.key"
    facehash.write_key_file(key)
    return tmp_path
