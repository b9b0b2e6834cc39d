"""Fixtures of the tracer's tests."""

from __future__ import annotations

import pytest

from edge.tracer import store


@pytest.fixture(scope="module")
def codes(embeddings, hasher):
    """The FaceHash text of each sample photo's face under the tests' key, by 'person/n.ext'."""
    return {p: str(hasher.hash(e)) for p, e in embeddings.items()}


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """A fresh sightings database: an SQLite file, or a PostgreSQL database."""
    return str(tmp_path / "sightings.sqlite") if request.param == "sqlite" else request.getfixturevalue("postgres")


@pytest.fixture
def db(db_url):
    """The store opened on db_url (both kinds)."""
    s = store.open_store(db_url)
    yield s
    s.close()
