"""A .tflite model as plain Python data: tensors (shape, type, quantisation, constant data)
and operators (builtin name, inputs, outputs, options), read with the flatbuffer parser of
PyPI's ``tflite`` package.

In: the bytes of a .tflite file. Out: a `Graph` of its first subgraph. Layout facts of the
format live here and nowhere else: CONV_2D filters are OHWI, DEPTHWISE_CONV_2D filters are
1HWC (per-channel scales on the last axis), FULLY_CONNECTED weights are (out, in) (`convert`
writes none, but other .tflite files may have them), activations are NHWC, biases int32.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "Graph",
    "GraphError",
    "Operator",
    "Tensor",
    "read_graph",
    "same_padding",
]


class GraphError(ValueError):
    """The flatbuffer is not a model this code understands; the message says what."""


@dataclass(frozen=True, eq=False)
class Tensor:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    scales: np.ndarray  # float32, empty when not quantised
    zero_points: np.ndarray  # int64
    quantized_dimension: int
    data: np.ndarray | None  # constant contents, shaped; None for activations

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    @property
    def scale(self) -> float:
        """The one scale of a per-tensor quantised tensor."""
        if self.scales.size != 1:
            raise GraphError(f"tensor {self.name!r} has {self.scales.size} scales, expected one")
        return float(self.scales[0])

    @property
    def zero_point(self) -> int:
        if self.zero_points.size == 0:
            return 0
        return int(self.zero_points[0])


@dataclass(frozen=True, eq=False)
class Operator:
    index: int
    opcode: str
    inputs: tuple[int, ...]  # -1 for an omitted optional input
    outputs: tuple[int, ...]
    options: dict[str, Any]


@dataclass(frozen=True, eq=False)
class Graph:
    tensors: tuple[Tensor, ...]
    operators: tuple[Operator, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]

    def tensor(self, index: int) -> Tensor:
        return self.tensors[index]


_DTYPES = {
    "FLOAT32": np.dtype(np.float32),
    "INT32": np.dtype(np.int32),
    "INT8": np.dtype(np.int8),
    "UINT8": np.dtype(np.uint8),
    "INT16": np.dtype(np.int16),
    "INT64": np.dtype(np.int64),
}
_ACTIVATIONS = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6"}
_PADDING = {0: "SAME", 1: "VALID"}


def _names(enum_class: type) -> dict[int, str]:
    return {
        v: k for k, v in vars(enum_class).items() if not k.startswith("_") and isinstance(v, int)
    }


def _conv_options(o: Any) -> dict[str, Any]:
    return {
        "padding": _PADDING[o.Padding()],
        "stride_h": o.StrideH(),
        "stride_w": o.StrideW(),
        "dilation_h": o.DilationHFactor(),
        "dilation_w": o.DilationWFactor(),
        "activation": _ACTIVATIONS[o.FusedActivationFunction()],
    }


def _depthwise_options(o: Any) -> dict[str, Any]:
    return {**_conv_options(o), "depth_multiplier": o.DepthMultiplier()}


def _pool_options(o: Any) -> dict[str, Any]:
    return {
        "padding": _PADDING[o.Padding()],
        "stride_h": o.StrideH(),
        "stride_w": o.StrideW(),
        "filter_h": o.FilterHeight(),
        "filter_w": o.FilterWidth(),
        "activation": _ACTIVATIONS[o.FusedActivationFunction()],
    }


def _options_readers() -> dict[str, tuple[type, Callable[[Any], dict[str, Any]]]]:
    import tflite

    return {
        "CONV_2D": (tflite.Conv2DOptions, _conv_options),
        "DEPTHWISE_CONV_2D": (tflite.DepthwiseConv2DOptions, _depthwise_options),
        "AVERAGE_POOL_2D": (tflite.Pool2DOptions, _pool_options),
        "MAX_POOL_2D": (tflite.Pool2DOptions, _pool_options),
        "FULLY_CONNECTED": (
            tflite.FullyConnectedOptions,
            lambda o: {
                "activation": _ACTIVATIONS[o.FusedActivationFunction()],
                "keep_num_dims": bool(o.KeepNumDims()),
                "weights_format": o.WeightsFormat(),
            },
        ),
        "SOFTMAX": (tflite.SoftmaxOptions, lambda o: {"beta": float(o.Beta())}),
        "MEAN": (tflite.ReducerOptions, lambda o: {"keep_dims": bool(o.KeepDims())}),
        "ADD": (
            tflite.AddOptions,
            lambda o: {"activation": _ACTIVATIONS[o.FusedActivationFunction()]},
        ),
    }


def read_graph(flatbuffer: bytes) -> Graph:
    """Parse the first subgraph of a .tflite flatbuffer.

    Raises `GraphError` for a file that is not a TFLite model, has several subgraphs or a
    tensor type outside int8/int32/float32/int16/uint8/int64.
    """
    import tflite

    if len(flatbuffer) < 8 or flatbuffer[4:8] != b"TFL3":
        raise GraphError("not a TFLite flatbuffer (no TFL3 identifier)")
    try:
        model = tflite.Model.GetRootAsModel(flatbuffer, 0)
        if model.SubgraphsLength() != 1:
            raise GraphError(f"model has {model.SubgraphsLength()} subgraphs; expected one")
        sub = model.Subgraphs(0)
        types = _names(tflite.TensorType)
        ops = _names(tflite.BuiltinOperator)
        tensors = []
        for i in range(sub.TensorsLength()):
            t = sub.Tensors(i)
            type_name = types.get(t.Type(), str(t.Type()))
            if type_name not in _DTYPES:
                raise GraphError(f"tensor {i} has unsupported type {type_name}")
            dtype = _DTYPES[type_name]
            shape = tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else ()
            q = t.Quantization()
            scales = np.zeros(0, np.float32)
            zeros = np.zeros(0, np.int64)
            qdim = 0
            if q is not None and q.ScaleLength():
                scales = np.asarray(q.ScaleAsNumpy(), dtype=np.float32)
                zeros = np.asarray(q.ZeroPointAsNumpy(), dtype=np.int64)
                qdim = int(q.QuantizedDimension())
            data = None
            buf = model.Buffers(t.Buffer())
            if buf is not None and buf.DataLength():
                raw = buf.DataAsNumpy().tobytes()
                data = np.frombuffer(raw, dtype=dtype).reshape(shape).copy()
            name = t.Name().decode() if t.Name() else f"t{i}"
            tensors.append(Tensor(i, name, shape, dtype, scales, zeros, qdim, data))
        readers = _options_readers()
        operators = []
        for i in range(sub.OperatorsLength()):
            op = sub.Operators(i)
            code = model.OperatorCodes(op.OpcodeIndex())
            opcode = ops.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "CUSTOM")
            options: dict[str, Any] = {}
            table = op.BuiltinOptions()
            if opcode in readers and table is not None:
                cls, read = readers[opcode]
                obj = cls()
                obj.Init(table.Bytes, table.Pos)
                options = read(obj)
            inputs = tuple(int(x) for x in op.InputsAsNumpy()) if op.InputsLength() else ()
            outputs = tuple(int(x) for x in op.OutputsAsNumpy()) if op.OutputsLength() else ()
            operators.append(Operator(i, opcode, inputs, outputs, options))
        return Graph(
            tuple(tensors),
            tuple(operators),
            tuple(int(x) for x in sub.InputsAsNumpy()),
            tuple(int(x) for x in sub.OutputsAsNumpy()),
        )
    except GraphError:
        raise
    except Exception as exc:  # the flatbuffer reader fails with assorted errors on bad bytes
        raise GraphError(f"cannot parse the flatbuffer: {exc}") from exc


def same_padding(in_size: int, filter_size: int, stride: int, dilation: int = 1) -> int:
    """Leading padding of TFLite's SAME (the extra odd pixel goes after)."""
    out = (in_size + stride - 1) // stride
    effective = (filter_size - 1) * dilation + 1
    total = max((out - 1) * stride + effective - in_size, 0)
    return total // 2
