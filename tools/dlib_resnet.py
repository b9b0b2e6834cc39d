"""dlib's face recognition ResNet as plain arrays, and a float reference forward pass in NumPy.

`load_network` turns the layers of the `.dat` into the network of dlib's `dnn_face_recognition_ex.cpp`:
a 7×7 stem, 14 residual units (3×3 conv, affine, relu, 3×3 conv, affine, + shortcut, relu) and a
128-d linear layer after global average pooling. At a down-sampling unit the shortcut is a 2×2 average
pool; the two branches then differ in size and channels and dlib zero-pads the smaller one, aligned
top-left. `reference_forward` follows dlib's arithmetic step by step and is the "float rebuild".
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from dlib_dat import DatFormatError, Layer, read_dat


@dataclass
class Conv:
    weights: np.ndarray  # O, I, H, W
    bias: np.ndarray
    stride: int
    padding: int
    gamma: np.ndarray  # the affine layer that follows
    beta: np.ndarray

    def folded(self) -> tuple[np.ndarray, np.ndarray]:
        """Weights (H, W, I, O) and bias with the affine layer folded in: γ·(W∗x + b) + β."""
        w = self.weights * self.gamma[:, None, None, None]
        return np.transpose(w, (2, 3, 1, 0)).astype(np.float32), (self.bias * self.gamma + self.beta).astype(np.float32)


@dataclass
class Unit:
    conv1: Conv
    conv2: Conv
    downsample: bool


@dataclass
class Network:
    channel_means: np.ndarray
    input_size: int
    stem: Conv
    units: list[Unit]
    fc: np.ndarray  # inputs × 128
    distance_threshold: float


def _expect(layers: list[Layer], i: int, kind: str) -> Layer:
    if i >= len(layers) or layers[i].kind != kind:
        found = layers[i].kind if i < len(layers) else "end of file"
        raise DatFormatError(f"layer {i}: expected {kind}, found {found}")
    return layers[i]


def _conv(layers: list[Layer], i: int) -> Conv:
    c, a = _expect(layers, i, "con").params, _expect(layers, i + 1, "affine").params
    if c["stride"][0] != c["stride"][1] or c["padding"][0] != c["padding"][1]:
        raise DatFormatError(f"layer {i}: only square strides and paddings are supported")
    return Conv(c["weights"], c["bias"], c["stride"][0], c["padding"][0], a["gamma"], a["beta"])


def load_network(path: str | Path) -> Network:
    dat = read_dat(path)
    layers = dat.layers
    stem = _conv(layers, 0)
    _expect(layers, 2, "relu")
    pool = _expect(layers, 3, "max_pool").params
    if pool["size"] != (3, 3) or pool["stride"] != (2, 2):
        raise DatFormatError("expected a 3×3/2 max pool after the stem")
    i, units = 4, []
    while layers[i].kind == "con":
        conv1 = _conv(layers, i)
        _expect(layers, i + 2, "relu")
        conv2 = _conv(layers, i + 3)
        i += 5
        down = layers[i].kind == "avg_pool"
        i += down
        _expect(layers, i, "add_prev")
        _expect(layers, i + 1, "relu")
        i += 2
        units.append(Unit(conv1, conv2, down))
    gpool = _expect(layers, i, "avg_pool").params
    if gpool["size"] != (0, 0):
        raise DatFormatError("expected a global average pool before the last layer")
    fc = _expect(layers, i + 1, "fc").params["weights"]
    if i + 2 != len(layers):
        raise DatFormatError("unexpected layers after the final linear layer")
    return Network(np.array(dat.channel_means, np.float32), dat.input_size, stem, units, fc, dat.distance_threshold)


# --- reference forward pass, NHWC float32 -------------------------------------------------------------


def _conv2d(x: np.ndarray, conv: Conv) -> np.ndarray:
    p, s = conv.padding, conv.stride
    if p:
        x = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
    kh, kw = conv.weights.shape[2:]
    win = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(1, 2))[:, ::s, ::s]  # N,H,W,C,kh,kw
    w = conv.weights.transpose(1, 2, 3, 0)  # C,kh,kw,O
    y = np.tensordot(win, w, axes=([3, 4, 5], [0, 1, 2]))
    return (y + conv.bias) * conv.gamma + conv.beta


def _pool(x: np.ndarray, size: int, stride: int, op) -> np.ndarray:
    win = np.lib.stride_tricks.sliding_window_view(x, (size, size), axis=(1, 2))[:, ::stride, ::stride]
    return op(win, axis=(4, 5))


def _add_padded(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    shape = np.maximum(a.shape, b.shape)
    out = np.zeros(shape, np.float32)
    out[: a.shape[0], : a.shape[1], : a.shape[2], : a.shape[3]] += a
    out[: b.shape[0], : b.shape[1], : b.shape[2], : b.shape[3]] += b
    return out


def reference_forward(net: Network, chips: np.ndarray) -> np.ndarray:
    """Raw 128-d descriptors (as dlib returns them) for uint8 RGB chips shaped N×150×150×3."""
    x = (chips.astype(np.float32) - net.channel_means) / 256.0
    x = np.maximum(_conv2d(x, net.stem), 0)
    x = _pool(x, 3, 2, np.max)
    for unit in net.units:
        y = np.maximum(_conv2d(x, unit.conv1), 0)
        y = _conv2d(y, unit.conv2)
        shortcut = _pool(x, 2, 2, np.mean) if unit.downsample else x
        x = np.maximum(_add_padded(y, shortcut), 0)
    return x.mean(axis=(1, 2)) @ net.fc
