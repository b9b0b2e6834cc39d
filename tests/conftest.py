"""Fixtures every role's tests use. Helpers (servers, waiting, configs, the daemon) are in tests/support."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from support.data import need_data
from support.events import KEY
from support.servers import Broker, Postgres


@pytest.fixture(scope="session")
def pipeline():
    from edge.unit.vision import FacePipeline

    return FacePipeline()


@pytest.fixture(scope="session")
def embeddings(pipeline):
    """The int8 embedding of the face in each sample photo of faces/, by 'person/n.ext'."""
    from edge.unit.vision.media import read_image

    folder = need_data("faces")
    return {
        f"{p.parent.name}/{p.name}": pipeline.process(read_image(p))[0].embedding for p in sorted(folder.glob("*/*"))
    }


@pytest.fixture(scope="session")
def hasher():
    """FaceHashes under the tests' key (support.events.KEY)."""
    from edge.core import facehash

    return facehash.FaceHasher(KEY, facehash.load_scheme())


@pytest.fixture(scope="session")
def dlib_float():
    """dlib's own float network (from face-recognition-models): the reference for the int8 model."""
    import importlib.util

    import dlib

    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None:
        pytest.skip("face-recognition-models is not installed (pip install -e '.[test]')")
    models = Path(spec.submodule_search_locations[0]) / "models"
    return dlib.face_recognition_model_v1(str(models / "dlib_face_recognition_resnet_model_v1.dat"))


# --- a real mosquitto broker and PostgreSQL on free loopback ports (tools/servers.py) ------------------


@pytest.fixture
def broker(tmp_path):
    b = Broker(tmp_path)
    b.start()
    yield b
    b.stop()


@pytest.fixture(scope="session")
def postgres_server():
    server = Postgres()
    yield server
    server.stop()


@pytest.fixture
def postgres(postgres_server) -> str:
    """The URL of a fresh, empty database."""
    return postgres_server.new_database()


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MB tmpfs (root only): a disk that can be filled."""
    if os.geteuid() != 0:
        pytest.skip("a full disk is simulated with a small tmpfs, which only root can mount")
    where = tmp_path / "disk"
    where.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(where)], check=True)
    yield where
    subprocess.run(["umount", "-l", str(where)], check=False)
