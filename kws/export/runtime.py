"""Running .tflite models on the host: LiteRT (default or reference kernels) and the
TensorFlow Lite Micro interpreter, plus what a device needs to know (arena, operators)."""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from kws.quiet import quiet_stderr

__all__ = [
    "ModelFileError",
    "QuantParams",
    "TFLiteModel",
    "first_difference",
    "micro_arena_bytes",
    "run_micro",
]


class ModelFileError(ValueError):
    """A .tflite file is corrupt, truncated or not a model."""


@dataclass(frozen=True)
class QuantParams:
    scale: float
    zero_point: int
    dtype: Any

    @functools.cached_property
    def _quantized(self) -> bool:
        return bool(np.issubdtype(self.dtype, np.integer) and self.scale)

    def quantize(self, x: np.ndarray) -> np.ndarray:
        if not self._quantized:
            return x.astype(self.dtype)
        info = np.iinfo(self.dtype)
        return np.clip(np.round(x / self.scale) + self.zero_point, info.min, info.max).astype(
            self.dtype
        )

    def dequantize(self, q: np.ndarray) -> np.ndarray:
        if not self._quantized:
            return q.astype(np.float32)
        return (q.astype(np.float32) - self.zero_point) * self.scale


class TFLiteModel:
    """One .tflite model in LiteRT, batch 1. ``reference=True`` uses the reference kernels
    (the ones TensorFlow Lite Micro matches bit for bit)."""

    def __init__(self, flatbuffer: bytes, *, name: str = "model", reference: bool = False) -> None:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        self.flatbuffer = flatbuffer
        resolver = OpResolverType.BUILTIN_REF if reference else OpResolverType.AUTO
        try:
            with quiet_stderr():  # LiteRT prints "INFO: Created ... XNNPACK delegate" there
                self.interpreter = Interpreter(
                    model_content=flatbuffer, experimental_op_resolver_type=resolver
                )
                self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            raise ModelFileError(f"{name}: not a valid .tflite model ({e})") from None
        inp = self.interpreter.get_input_details()[0]
        out = self.interpreter.get_output_details()[0]
        self.input_index, self.output_index = inp["index"], out["index"]
        self.input_shape = tuple(int(d) for d in inp["shape"])
        self.input_q = QuantParams(
            float(inp["quantization"][0]), int(inp["quantization"][1]), inp["dtype"]
        )
        self.output_q = QuantParams(
            float(out["quantization"][0]), int(out["quantization"][1]), out["dtype"]
        )

    def operators(self) -> list[str]:
        """Operators of the model itself (an interpreter without delegates lists them)."""
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        plain = Interpreter(
            model_content=self.flatbuffer,
            experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
        )
        return sorted({op["op_name"] for op in plain._get_ops_details()})

    def run_raw(self, x: np.ndarray) -> np.ndarray:
        """Raw output tensors (int8 for int8 models) for raw inputs (n, *input_shape[1:])."""
        out = []
        for example in x:
            self.interpreter.set_tensor(self.input_index, example[None])
            self.interpreter.invoke()
            out.append(self.interpreter.get_tensor(self.output_index)[0].copy())
        return np.stack(out)

    def predict_one(self, features: np.ndarray) -> np.ndarray:
        """`predict` of one example (features of shape input_shape[1:]) without batching:
        the streaming detector's per-hop call, where the loop and stacking would cost more
        than the quantisation."""
        self.interpreter.set_tensor(self.input_index, self.input_q.quantize(features[None]))
        self.interpreter.invoke()
        return self.output_q.dequantize(self.interpreter.get_tensor(self.output_index)[0])

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Class scores (float) for float features, quantising inputs as the model says."""
        return self.output_q.dequantize(self.run_raw(self.input_q.quantize(features)))

    def latency_ms(self, example: np.ndarray, *, repeats: int = 200) -> float:
        """Median wall time of one invoke on this machine."""
        self.interpreter.set_tensor(self.input_index, example[None])
        for _ in range(10):
            self.interpreter.invoke()
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            self.interpreter.invoke()
            times.append(time.perf_counter() - t0)
        return float(np.median(times) * 1000)


def _micro(flatbuffer: bytes, arena: int) -> Any:
    from tflite_micro import runtime

    return runtime.Interpreter.from_bytes(flatbuffer, arena_size=arena)


def run_micro(flatbuffer: bytes, raw_inputs: np.ndarray, *, arena: int) -> np.ndarray:
    """Raw outputs of the TensorFlow Lite Micro interpreter (its reference kernels)."""
    interpreter = _micro(flatbuffer, arena)
    out = []
    for example in raw_inputs:
        interpreter.set_input(example[None], 0)
        interpreter.invoke()
        out.append(np.array(interpreter.get_output(0))[0].copy())
    return np.stack(out)


def first_difference(flatbuffer: bytes, raw_input: np.ndarray) -> str | None:
    """The first operator whose output differs between LiteRT's reference kernels and TFLM
    on one input (both keep every intermediate tensor), as "OP (output tensor T, N LSB)"."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    from tflite_micro import runtime

    ref = Interpreter(
        model_content=flatbuffer,
        experimental_op_resolver_type=OpResolverType.BUILTIN_REF,
        experimental_preserve_all_tensors=True,
    )
    ref.allocate_tensors()
    ref.set_tensor(ref.get_input_details()[0]["index"], raw_input[None])
    ref.invoke()
    with quiet_stderr():
        micro = runtime.Interpreter.from_bytes(
            flatbuffer,
            arena_size=1 << 22,
            intrepreter_config=runtime.InterpreterConfig.kPreserveAllTensors,
        )
    micro.set_input(raw_input[None], 0)
    micro.invoke()
    for op in ref._get_ops_details():
        for tensor in op["outputs"]:
            a = ref.get_tensor(tensor)
            b = np.asarray(micro.GetTensor(int(tensor), 0)["tensor_data"]).reshape(a.shape)
            if not np.array_equal(a, b):
                lsb = int(np.abs(a.astype(np.int64) - b.astype(np.int64)).max())
                return f"{op['op_name']} (output tensor {tensor}, {lsb} LSB)"
    return None


def micro_arena_bytes(flatbuffer: bytes, example: np.ndarray, *, upper: int = 1 << 22) -> int:
    """Smallest tensor arena (bytes, to 16) with which TFLM allocates and runs the model."""

    def works(size: int) -> bool:
        try:
            interpreter = _micro(flatbuffer, size)
            interpreter.set_input(example[None], 0)
            interpreter.invoke()
            return True
        except (RuntimeError, ValueError):
            return False

    with quiet_stderr():
        if not works(upper):
            raise ModelFileError(f"TFLM cannot run the model even with a {upper}-byte arena")
        lo, hi = 0, upper  # invariant: hi works, lo does not
        while hi - lo > 16:
            mid = (lo + hi) // 2
            if works(mid):
                hi = mid
            else:
                lo = mid
    return hi
