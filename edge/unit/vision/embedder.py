"""The int8 face embedder on the LiteRT interpreter (TensorFlow Lite's successor).

Input chips are raw uint8 RGB; the network's input normalisation is folded into its first layer,
so quantising the input is exact. Output is dequantised and L2-normalised, so cosine similarity is a
dot product.
"""

from __future__ import annotations

import numpy as np

from edge.core.errors import RuntimeMissingError


def _interpreter_class():
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:  # the last tflite-runtime (2.14) only runs with numpy < 2 and Python ≤ 3.11
            from tflite_runtime.interpreter import Interpreter
        except ImportError:
            raise RuntimeMissingError(
                "no TensorFlow Lite runtime is installed: install ai-edge-litert "
                "(`pip install ai-edge-litert`) in traceon-edge's environment"
            ) from None
    return Interpreter


class Embedder:
    def __init__(self, model_path, manifest: dict, threads: int = 1):
        self._interpreter = _interpreter_class()(model_path=str(model_path), num_threads=threads)
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._interpreter.get_output_details()[0]
        spec = manifest["input"]
        self._in_scale, self._in_zero = spec["scale"], spec["zero_point"]
        self._in_dtype = np.dtype(spec["dtype"])
        out = manifest["output"]
        self._out_scale, self._out_zero = out["scale"], out["zero_point"]
        self.size = int(manifest["embedding_size"])
        self._batch = 0

    def _resize(self, batch: int) -> None:
        if batch != self._batch:
            shape = list(self._input["shape"])
            shape[0] = batch
            self._interpreter.resize_tensor_input(self._input["index"], shape)
            self._interpreter.allocate_tensors()
            self._batch = batch

    def _quantize(self, chips: np.ndarray) -> np.ndarray:
        if self._in_dtype.kind == "f":  # a float build of the same network (benchmarks)
            return chips.astype(self._in_dtype)
        q = np.round(chips.astype(np.float32) / self._in_scale + self._in_zero)
        info = np.iinfo(self._in_dtype)
        return np.clip(q, info.min, info.max).astype(self._in_dtype)

    def embed(self, chips: np.ndarray) -> np.ndarray:
        """L2-normalised embeddings (N×128 float32) for uint8 RGB chips (N×150×150×3)."""
        if len(chips) == 0:
            return np.zeros((0, self.size), np.float32)
        self._resize(len(chips))
        self._interpreter.set_tensor(self._input["index"], self._quantize(chips))
        self._interpreter.invoke()
        raw = self._interpreter.get_tensor(self._output["index"]).astype(np.float32)
        vectors = (raw - self._out_zero) * self._out_scale
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, 1e-12)
