"""Build the shipped int8 TFLite face embedder from dlib's face recognition ResNet.

    pip install -r tools/requirements-build.txt      # TensorFlow etc.: build time only
    python tools/build_model.py                        # writes models/dlib_resnet_v1_int8.{tflite,json}

Steps, each checked before the next: parse dlib's .dat; compare the NumPy rebuild with dlib on real
faces; express the network as a TensorFlow graph (input normalisation and every affine layer folded into
the convolutions) and compare it with the rebuild; convert it to a full-integer int8 model calibrated on
aligned chips from lfw_dev; compare int8 with the rebuild on every lfw_dev chip; calibrate the match
threshold on the lfw_dev pairs; write the model, the 5-point landmark model and a manifest with
checksums. Same inputs, same outputs: the build is deterministic.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # oneDNN reorders float sums: keep the build repeatable

sys.path.insert(0, str(Path(__file__).resolve().parent))
import lfw
from build_detector import detector_entry
from dlib_resnet import Conv, Network, load_network, reference_forward
from edge.unit.vision.models import sha256_of

from edge.unit.vision.embedder import Embedder

NAME = "dlib_resnet_v1_int8"
MODELS = lfw.ROOT / "models"
BUILD = lfw.ROOT / "build"
FACES = lfw.ROOT.parent / "shared" / "data" / "faces"
CALIBRATION_CHIPS = 0  # 0: every lfw_dev chip (400 clipped dark faces: worst cosine 0.9977 vs 0.9984)


def source_models_dir() -> Path:
    spec = importlib.util.find_spec("face_recognition_models")  # importing it needs pkg_resources
    if spec is None or not spec.submodule_search_locations:
        sys.exit("face-recognition-models is not installed: pip install -r tools/requirements-build.txt")
    return Path(spec.submodule_search_locations[0]) / "models"


def check_against_dlib(net: Network, dat: Path, landmarks: Path) -> float:
    import dlib

    paths = sorted(p for p in FACES.rglob("*") if p.suffix in {".jpg", ".png"})
    chips = [c for c in lfw.chips_for(paths, landmarks, upsample=1).values() if c is not None]
    recogniser = dlib.face_recognition_model_v1(str(dat))
    theirs = np.array([recogniser.compute_face_descriptor(c) for c in chips])
    ours = reference_forward(net, np.stack(chips))
    return float(np.abs(theirs - ours).max()), len(chips)


def tf_graph(net: Network):
    import tensorflow as tf

    def conv(x, c: Conv, fold_input: bool = False):
        w, b = c.folded()
        if fold_input:  # (v - mean)/256 is exact to fold: the stem convolution has no padding
            b = b - np.einsum("hwio,i->o", w, net.channel_means) / 256.0
            w = w / 256.0
        k = w.shape[0]
        if c.padding == 0:
            mode = "VALID"
        elif c.stride == 1 and c.padding == k // 2:
            mode = "SAME"
        else:
            raise ValueError(f"unsupported padding {c.padding} for a {k}×{k} convolution")
        return tf.nn.conv2d(x, tf.constant(w.astype(np.float32)), c.stride, mode) + b.astype(np.float32)

    def pad_to(x, shape):
        extra = [[0, 0]] + [[0, int(t - s)] for s, t in zip(x.shape[1:], shape[1:], strict=True)]
        return tf.pad(x, extra) if any(e[1] for e in extra) else x

    size = net.input_size

    @tf.function(input_signature=[tf.TensorSpec([None, size, size, 3], tf.float32, name="rgb")])
    def forward(rgb):
        x = tf.nn.relu(conv(rgb, net.stem, fold_input=True))
        x = tf.nn.max_pool2d(x, 3, 2, "VALID")
        for unit in net.units:
            y = tf.nn.relu(conv(x, unit.conv1))
            y = conv(y, unit.conv2)
            s = tf.nn.avg_pool2d(x, 2, 2, "VALID") if unit.downsample else x
            shape = [None] + [max(a, b) for a, b in zip(y.shape[1:], s.shape[1:], strict=True)]
            x = tf.nn.relu(pad_to(y, shape) + pad_to(s, shape))
        x = tf.reduce_mean(x, axis=[1, 2])
        return tf.matmul(x, tf.constant(net.fc))

    return forward


def convert(forward, calibration: np.ndarray | None) -> bytes:
    import tensorflow as tf

    concrete = forward.get_concrete_function()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete])
    if calibration is not None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([c[None].astype(np.float32)] for c in calibration)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    return converter.convert()


def calibration_set(chips: dict[Path, np.ndarray | None]) -> np.ndarray:
    found = [c for _, c in sorted(chips.items()) if c is not None]
    step = max(1, len(found) // CALIBRATION_CHIPS) if CALIBRATION_CHIPS else 1
    picked = np.stack(found[::step][: CALIBRATION_CHIPS or None]).copy()
    # One black and one white pixel make the calibrated input range exactly 0..255, so the int8
    # input (scale 1, zero point -128) carries every uint8 value unchanged.
    picked[0, 0, 0] = 0
    picked[0, 0, 1] = 255
    return picked


def io_spec(model: bytes) -> tuple[dict, dict]:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=model)
    (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()

    def spec(d):
        scale, zero = d["quantization"]
        return {"dtype": np.dtype(d["dtype"]).name, "scale": float(scale), "zero_point": int(zero)}

    return spec(inp), spec(out)


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return np.sum(a * b, axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=Path, default=lfw.DEFAULT_PAIRS, help="LFW-format pairs for calibration")
    parser.add_argument("--out", type=Path, default=MODELS)
    args = parser.parse_args()
    import tensorflow as tf

    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.config.threading.set_intra_op_parallelism_threads(1)

    source = source_models_dir()
    dat, landmarks = (
        source / "dlib_face_recognition_resnet_model_v1.dat",
        source / "shape_predictor_5_face_landmarks.dat",
    )
    net = load_network(dat)
    print(f"parsed {dat.name}: {len(net.units)} residual units, fc {net.fc.shape}")

    diff, n = check_against_dlib(net, dat, landmarks)
    print(f"NumPy rebuild vs dlib on {n} faces from {FACES.name}/: max |Δ| = {diff:.2e}")
    if diff > 1e-4:
        sys.exit("the rebuild does not match dlib; refusing to convert")

    pairs = lfw.read_pairs(args.pairs)
    chips = lfw.chips_for(lfw.unique_images(pairs), landmarks)
    found = {p: c for p, c in chips.items() if c is not None}
    print(f"lfw_dev: {len(found)} of {len(chips)} photos gave a face")
    paths = sorted(found)
    all_chips = np.stack([found[p] for p in paths])
    reference = np.concatenate([reference_forward(net, all_chips[i : i + 64]) for i in range(0, len(paths), 64)])

    forward = tf_graph(net)
    tf_out = forward(tf.constant(all_chips[:32].astype(np.float32))).numpy()
    diff = float(np.abs(tf_out - reference[:32]).max())
    print(f"TensorFlow graph vs NumPy rebuild: max |Δ| = {diff:.2e}")
    if diff > 1e-4:
        sys.exit("the TensorFlow graph does not match the rebuild; refusing to convert")

    calibration = calibration_set(chips)
    int8 = convert(forward, calibration)
    BUILD.mkdir(exist_ok=True)
    (BUILD / "dlib_resnet_v1_float32.tflite").write_bytes(convert(forward, None))
    input_spec, output_spec = io_spec(int8)
    if input_spec["scale"] != 1.0 or input_spec["zero_point"] != -128:
        sys.exit(f"int8 input is not an exact uint8 carrier: {input_spec}")

    manifest = {
        "name": NAME,
        "description": "dlib face recognition ResNet: FaceNet-style 128-d metric embedder, full-integer int8",
        "model": {"file": f"{NAME}.tflite", "sha256": None},
        "landmarks": {"file": landmarks.name, "sha256": sha256_of(landmarks)},
        "detector": detector_entry(),  # tools/build_detector.py ships the file itself
        "source": {
            "file": dat.name,
            "sha256": sha256_of(dat),
            "package": f"face-recognition-models {importlib.metadata.version('face-recognition-models')}",
            "licence": "public domain / CC0 1.0 (Davis King, dlib-models)",
        },
        "input": {
            "size": net.input_size,
            "channels": "RGB",
            "chip": "dlib get_face_chip, 150 px, padding 0.25, 5-point landmarks",
            "normalisation": f"(v - {[round(float(m), 3) for m in net.channel_means]}) / 256, in layer 1",
            **input_spec,
        },
        "output": output_spec,
        "embedding_size": int(net.fc.shape[1]),
        "match": None,
        "build": {
            "tool": "tools/build_model.py",
            "tensorflow": tf.__version__,
            "quantization": "full-integer int8: per-channel weights, per-tensor activations, int8 in/out",
            "calibration": f"min/max over {len(calibration)} aligned chips: every lfw_dev photo with a face",
        },
    }
    with tempfile.TemporaryDirectory() as tmp:
        tmp_model = Path(tmp) / f"{NAME}.tflite"
        tmp_model.write_bytes(int8)
        manifest["model"]["sha256"] = sha256_of(tmp_model)
        embedder = Embedder(tmp_model, manifest, threads=2)
        ours = np.concatenate([embedder.embed(all_chips[i : i + 32]) for i in range(0, len(paths), 32)])
    cos = cosine(reference, ours)
    print(
        f"int8 vs float rebuild on {len(cos)} lfw_dev chips: cosine median {np.median(cos):.5f}, "
        f"1st percentile {np.percentile(cos, 1):.5f}, worst {cos.min():.5f}"
    )

    index = {p: i for i, p in enumerate(paths)}
    usable = [pr for pr in pairs if pr.a in index and pr.b in index]
    sim = np.array([float(ours[index[pr.a]] @ ours[index[pr.b]]) for pr in usable])
    same = np.array([pr.same for pr in usable])
    threshold = lfw.best_threshold(sim, same)
    accuracy = float(np.mean((sim >= threshold) == same))
    manifest["match"] = {
        "metric": "cosine similarity of L2-normalised embeddings; same person if ≥ threshold",
        "threshold": round(threshold, 4),
        "calibrated_on": f"{args.pairs.name}: {len(usable)} of {len(pairs)} pairs with both faces found",
        "accuracy_at_threshold": round(accuracy, 4),
    }
    manifest["check"] = {
        "cosine_to_float_median": round(float(np.median(cos)), 5),
        "cosine_to_float_worst": round(float(cos.min()), 5),
    }
    args.out.mkdir(exist_ok=True)
    (args.out / f"{NAME}.tflite").write_bytes(int8)
    shutil.copyfile(landmarks, args.out / landmarks.name)
    (args.out / f"{NAME}.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    print(f"threshold {threshold:.4f} (accuracy {accuracy:.4f} on {len(usable)} pairs)")
    print(f"wrote {args.out / (NAME + '.tflite')} ({len(int8) / 1e6:.2f} MB) and its manifest")


if __name__ == "__main__":
    main()
