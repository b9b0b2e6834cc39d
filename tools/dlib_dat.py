"""Read dlib's face recognition ResNet (`dlib_face_recognition_resnet_model_v1.dat`) without dlib.

The file is dlib's own binary serialization (layout in ../shared/docs/FACTS.md). Layer wrappers carry
no ids, so the nesting comes from dlib's `dnn_face_recognition_ex.cpp`; `rebuild_layers` checks the
file against that architecture and returns the layers in forward order.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


class DatFormatError(ValueError):
    pass


class _Reader:
    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def byte(self) -> int:
        b = self.data[self.pos]
        self.pos += 1
        return b

    def int(self) -> int:
        control = self.byte()
        size = control & 0x0F
        if size > 8:
            raise DatFormatError(f"bad integer control byte {control:#x} at offset {self.pos - 1}")
        raw = self.data[self.pos : self.pos + size]
        self.pos += size
        value = int.from_bytes(raw, "little")
        return -value if control & 0x80 else value

    def float(self) -> float:
        mantissa = self.int()
        exponent = self.int()
        return float(mantissa) * 2.0**exponent

    def bool(self) -> bool:
        b = self.byte()
        if b not in (ord("0"), ord("1")):
            raise DatFormatError(f"bad bool byte {b:#x} at offset {self.pos - 1}")
        return b == ord("1")

    def string(self) -> str:
        n = self.int()
        s = self.data[self.pos : self.pos + n].decode("ascii")
        self.pos += n
        return s

    def tensor(self) -> np.ndarray:
        version = self.int()
        shape = tuple(self.int() for _ in range(4))
        if version == 1:  # an alias tensor: shape only
            return np.zeros((0,), np.float32)
        if version != 2:
            raise DatFormatError(f"unknown tensor version {version} at offset {self.pos}")
        count = int(np.prod(shape))
        values = np.frombuffer(self.data, "<f4", count, self.pos).reshape(shape)
        self.pos += 4 * count
        return values.astype(np.float32)


@dataclass
class Layer:
    kind: str  # con, affine, relu, max_pool, avg_pool, add_prev, fc
    params: dict = field(default_factory=dict)


def _read_details(r: _Reader) -> Layer:
    name = r.string()
    if name.startswith("con_"):
        params = r.tensor().reshape(-1)
        n, nr, nc = r.int(), r.int(), r.int()
        stride = (r.int(), r.int())
        padding = (r.int(), r.int())
        r.tensor(), r.tensor()
        [r.float() for _ in range(4)]
        if name in ("con_5", "con_6"):
            r.bool()
        if name == "con_6":
            r.bool()
        in_ch = (params.size - n) // (n * nr * nc)
        weights = params[: n * in_ch * nr * nc].reshape(n, in_ch, nr, nc)
        bias = params[n * in_ch * nr * nc :]
        return Layer("con", dict(weights=weights, bias=bias, stride=stride, padding=padding))
    if name in ("affine_", "affine_2"):
        params = r.tensor().reshape(-1)
        r.tensor(), r.tensor()
        mode = r.int()
        if name == "affine_2":
            r.bool()
        if mode != 0:
            raise DatFormatError("only per-channel affine layers are supported")
        half = params.size // 2
        return Layer("affine", dict(gamma=params[:half], beta=params[half:]))
    if name == "relu_":
        return Layer("relu")
    if name in ("max_pool_2", "avg_pool_2"):
        size = (r.int(), r.int())
        stride = (r.int(), r.int())
        padding = (r.int(), r.int())
        return Layer(name[:-2], dict(size=size, stride=stride, padding=padding))
    if name == "add_prev_":
        return Layer("add_prev")
    if name in ("fc_2", "fc_3"):
        outputs, inputs = r.int(), r.int()
        params = r.tensor().reshape(-1)
        r.tensor(), r.tensor()
        bias_mode = r.int()
        [r.float() for _ in range(4)]
        if name == "fc_3":
            r.bool()
        weights = params[: inputs * outputs].reshape(inputs, outputs)
        return Layer("fc", dict(weights=weights, bias_mode=bias_mode))
    raise DatFormatError(f"unsupported layer {name!r} at offset {r.pos}")


def _skip_trailer(r: _Reader) -> None:
    for _ in range(3):
        r.bool()
    for _ in range(3):
        r.tensor()


@dataclass
class DatModel:
    margin: float
    distance_threshold: float
    channel_means: tuple[float, float, float]
    input_size: int
    layers: list[Layer]  # forward order, from the input side


def read_dat(path: str | Path) -> DatModel:
    r = _Reader(Path(path).read_bytes())
    if r.int() != 1 or r.string() != "loss_metric_2":
        raise DatFormatError(f"{path} is not a dlib metric-loss network")
    margin, threshold = r.float(), r.float()
    wrappers = []
    while (version := r.int()) != 3:  # versions of each wrapper, outside in; 3 wraps the input
        wrappers.append(version)
    if r.string() != "input_rgb_image_sized":
        raise DatFormatError("expected an input_rgb_image_sized input layer")
    means = (r.float(), r.float(), r.float())
    nr, nc = r.int(), r.int()
    layers = [_read_details(r)]
    _skip_trailer(r)
    r.int()  # sample expansion factor, only after the input wrapper
    for _ in range(wrappers.count(2)):
        layers.append(_read_details(r))
        _skip_trailer(r)
    if r.pos != len(r.data):
        raise DatFormatError(f"{len(r.data) - r.pos} unread bytes at the end of {path}")
    if nr != nc:
        raise DatFormatError("expected a square input")
    return DatModel(margin, threshold, means, nr, layers)


def float_bits(x: float) -> bytes:
    return struct.pack("<f", x)
