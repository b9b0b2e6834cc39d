from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


def need_data(*parts: str) -> Path:
    path = DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent: the real photos live in ../shared/data beside the checkout")
    return path


@pytest.fixture(scope="session")
def pipeline():
    from edge.vision import FacePipeline

    return FacePipeline()


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
