"""int8 SOFTMAX, MEAN, AVERAGE/MAX_POOL_2D and ADD: the C kernels of csrc/kws_ops_extra.c and
the NumPy models of kws.export.cops against LiteRT's reference kernels, bit for bit.

Small Keras models are converted to full int8 with TensorFlow; LiteRT (BUILTIN_REF, every
tensor preserved) runs them on random and extreme int8 inputs, and each supported operator's
output is compared with the C kernel (a shared library built with the strict C99 flags)
and the NumPy model fed the same operator input. Variants of the operator model rewrite
scales, zero points, fused activations and softmax beta in the flatbuffer, so the integer
parameters cover far more than one calibration.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import io
import re
import shutil
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kws.export import cops

CSRC = Path(cops.__file__).parent / "csrc"
STRICT = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror"]
POOLS = {"AVERAGE_POOL_2D": "avg", "MAX_POOL_2D": "max"}
CHECKED = {"SOFTMAX", "MEAN", "ADD", *POOLS}

I8P = ctypes.POINTER(ctypes.c_int8)
I32 = ctypes.c_int32


def _struct(cls: type) -> type[ctypes.Structure]:
    """A ctypes mirror of a cops dataclass (same field order as the C struct)."""
    fields = [(f.name, I32) for f in dataclasses.fields(cls)]
    return type(f"C{cls.__name__}", (ctypes.Structure,), {"_fields_": fields})


PoolC = _struct(cops.PoolParams)
AddC = _struct(cops.AddParams)


def _c(cstruct: type[ctypes.Structure], params: Any) -> ctypes.Structure:
    return cstruct(*dataclasses.astuple(params))


def _p8(a: np.ndarray) -> Any:
    assert a.dtype == np.int8 and a.flags.c_contiguous
    return a.ctypes.data_as(I8P)


def _i32x4(values: tuple[int, ...]) -> Any:
    return (I32 * 4)(*values)


@pytest.fixture(scope="module")
def lib(tmp_path_factory: pytest.TempPathFactory) -> ctypes.CDLL:
    cc = shutil.which("cc")
    if cc is None:
        pytest.skip("no host C compiler")
    out = tmp_path_factory.mktemp("cops") / "libkws_ops_extra.so"
    src = CSRC / "kws_ops_extra.c"
    subprocess.run([cc, *STRICT, "-shared", "-fPIC", "-o", str(out), str(src)], check=True)
    return _load(out)


def _load(path: Path) -> ctypes.CDLL:
    """The kernels of a shared library built from kws_ops_extra.c, with their signatures."""
    dll = ctypes.CDLL(str(path))
    dll.kws_softmax_s8.argtypes = [I8P, I8P, I32, I32, I32, I32, I32]
    dll.kws_mean_hw_s8.argtypes = [I8P, I8P, *[I32] * 8]
    for name in ("kws_avg_pool_s8", "kws_max_pool_s8"):
        getattr(dll, name).argtypes = [ctypes.POINTER(PoolC), I8P, I8P, I32]
    dll.kws_add_s8.argtypes = [ctypes.POINTER(AddC), I8P, I8P, I8P, I32]
    i32p = ctypes.POINTER(I32)
    dll.kws_add_broadcast_s8.argtypes = [ctypes.POINTER(AddC), I8P, i32p, I8P, i32p, i32p, I8P]
    for f in (dll.kws_softmax_s8, dll.kws_mean_hw_s8, dll.kws_add_s8, dll.kws_add_broadcast_s8):
        f.restype = None
    return dll


# ---- TensorFlow models -----------------------------------------------------------------------


def _convert(model: Any, inputs: dict[str, float], rng: np.random.Generator) -> bytes:
    """Full int8 (int8 inputs and outputs), calibrated on normal data of the given spreads."""
    import tensorflow as tf

    from kws.quiet import quiet_stderr

    shapes = {t.name: tuple(t.shape) for t in model.inputs}

    def examples() -> Any:
        for _ in range(32):
            yield {k: rng.normal(0.0, sd, shapes[k]).astype(np.float32) for k, sd in inputs.items()}

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = examples
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    with contextlib.redirect_stdout(io.StringIO()), quiet_stderr(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return converter.convert()


@pytest.fixture(scope="module")
def models() -> dict[str, bytes]:
    """'ops': every operator fed straight by model inputs (so test inputs reach it unchanged);
    'chain': a small conv network where the operators see converter-made tensors."""
    pytest.importorskip("tensorflow")
    pytest.importorskip("ai_edge_litert")
    pytest.importorskip("tflite")
    import keras

    layers = keras.layers
    keras.utils.set_random_seed(7)
    rng = np.random.default_rng(7)

    a = keras.Input(batch_shape=(1, 6, 9, 5), name="a")
    b = keras.Input(batch_shape=(1, 6, 9, 5), name="b")
    c = keras.Input(batch_shape=(1, 1, 1, 5), name="c")
    d = keras.Input(batch_shape=(1, 10), name="d")
    e = keras.Input(batch_shape=(1, 40, 12), name="e")  # 40 softmax rows per inference
    outputs = [
        layers.AveragePooling2D(3, 2, padding="same")(a),
        layers.ReLU()(layers.AveragePooling2D((2, 3), (1, 2), padding="valid")(a)),
        layers.MaxPooling2D(3, 2, padding="same")(a),
        layers.MaxPooling2D((2, 2), (1, 1), padding="valid")(a),
        layers.GlobalAveragePooling2D()(a),
        layers.GlobalAveragePooling2D(keepdims=True)(b),
        layers.Add()([a, b]),
        layers.ReLU(max_value=6.0)(keras.ops.add(a, c)),  # a broadcasting ADD
        layers.Softmax()(d),
        layers.Softmax()(e),
    ]
    spreads = {"a": 1.0, "b": 3.0, "c": 0.5, "d": 4.0, "e": 8.0}
    ops = _convert(keras.Model([a, b, c, d, e], outputs), spreads, rng)

    x = keras.Input(batch_shape=(1, 10, 8, 3), name="x")
    c1 = layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    c2 = layers.Conv2D(8, 3, padding="same")(x)
    s = layers.ReLU(max_value=6.0)(layers.Add()([c1, c2]))
    pooled = layers.Add()(
        [layers.AveragePooling2D(2)(s), layers.MaxPooling2D(3, 2, padding="same")(s)]
    )
    y = layers.Softmax()(layers.Dense(6)(layers.GlobalAveragePooling2D()(pooled)))
    chain = _convert(keras.Model(x, y), {"x": 1.0}, rng)
    return {"ops": ops, "chain": chain}


# ---- the flatbuffer, read with PyPI's tflite -----------------------------------------------


@dataclass(frozen=True)
class _Tensor:
    shape: tuple[int, ...]
    scale: float
    zero_point: int


@dataclass(frozen=True)
class _Op:
    name: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options: dict[str, Any]


_PADDING = {0: "SAME", 1: "VALID"}


def _graph(buf: bytes) -> tuple[list[_Tensor], list[_Op]]:
    import tflite

    model = tflite.Model.GetRootAsModel(buf, 0)
    g = model.Subgraphs(0)
    names = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
    tensors = []
    for i in range(g.TensorsLength()):
        t = g.Tensors(i)
        q = t.Quantization()
        scale = float(q.Scale(0)) if q is not None and q.ScaleLength() else 0.0
        zp = int(q.ZeroPoint(0)) if q is not None and q.ZeroPointLength() else 0
        shape = tuple(int(n) for n in t.ShapeAsNumpy()) if t.ShapeLength() else ()
        tensors.append(_Tensor(shape, scale, zp))
    ops = []
    for i in range(g.OperatorsLength()):
        op = g.Operators(i)
        code = model.OperatorCodes(op.OpcodeIndex())
        name = names[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())]
        table = op.BuiltinOptions()
        options: dict[str, Any] = {}
        if name in POOLS:
            o = tflite.Pool2DOptions()
            o.Init(table.Bytes, table.Pos)
            options = {
                "padding": _PADDING[o.Padding()],
                "stride_h": o.StrideH(),
                "stride_w": o.StrideW(),
                "filter_h": o.FilterHeight(),
                "filter_w": o.FilterWidth(),
                "activation": cops.ACTIVATIONS[o.FusedActivationFunction()],
            }
        elif name == "ADD":
            o = tflite.AddOptions()
            o.Init(table.Bytes, table.Pos)
            options = {"activation": cops.ACTIVATIONS[o.FusedActivationFunction()]}
        elif name == "SOFTMAX":
            o = tflite.SoftmaxOptions()
            o.Init(table.Bytes, table.Pos)
            options = {"beta": o.Beta()}
        elif name == "MEAN":
            o = tflite.ReducerOptions()
            o.Init(table.Bytes, table.Pos)
            options = {"keep_dims": bool(o.KeepDims())}
        inputs = tuple(int(k) for k in op.InputsAsNumpy())
        outputs = tuple(int(k) for k in op.OutputsAsNumpy())
        ops.append(_Op(name, inputs, outputs, options))
    return tensors, ops


def _variant(buf: bytes, seed: int) -> bytes:
    """The model with random int8 scales and zero points (pooling and RESHAPE outputs keep
    their input's, softmax outputs stay 1/256, -128), random fused activations on pooling
    and ADD, and a random softmax beta. Seed 1 also gives every MEAN its input's
    quantisation, seed 2 a softmax whose beta * scale caps the multiplier at 2^31 - 1."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    rng = np.random.default_rng(seed)
    model = schema.ModelT.InitFromPackedBuf(buf, 0)
    g = model.subgraphs[0]
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}

    def opname(op: Any) -> str:
        code = model.operatorCodes[op.opcodeIndex]
        return names[max(code.builtinCode, code.deprecatedBuiltinCode)]

    for t in g.tensors:
        if t.type == schema.TensorType.INT8 and t.quantization is not None:
            t.quantization.scale = [float(10 ** rng.uniform(-3.0, 0.0))]
            t.quantization.zeroPoint = [int(rng.integers(-128, 128))]
    for op in g.operators:  # topological order, so ties chain correctly
        name = opname(op)
        qin, qout = g.tensors[op.inputs[0]].quantization, g.tensors[op.outputs[0]].quantization
        if name in POOLS or name == "RESHAPE" or (name == "MEAN" and seed == 1):
            qout.scale, qout.zeroPoint = list(qin.scale), list(qin.zeroPoint)
        if name in POOLS or name == "ADD":
            op.builtinOptions.fusedActivationFunction = int(rng.integers(0, 4))
        if name == "SOFTMAX":
            qout.scale, qout.zeroPoint = [1.0 / 256], [-128]
            if seed == 2:
                qin.scale, op.builtinOptions.beta = [0.5], 100.0
            else:
                betas = [1.0, 0.5, 2.0, 10 ** rng.uniform(-1.0, 1.0)]
                op.builtinOptions.beta = float(rng.choice(betas))
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


# ---- LiteRT -----------------------------------------------------------------------------------


def _feeds(details: list[dict[str, Any]], rng: np.random.Generator, n: int) -> list[dict]:
    """n sets of model inputs: all -128, all 127, all 0, then -128/127 mixes, constants,
    narrow clusters (rounding ties of averages) and uniform noise."""
    feeds = []
    for k in range(n):
        feed = {}
        for d in details:
            shape = tuple(d["shape"])
            if k < 3:
                x = np.full(shape, (-128, 127, 0)[k])
            elif k < 13:
                x = rng.choice(np.array([-128, 127]), shape)
            elif k < 23:
                x = np.full(shape, rng.integers(-128, 128))
            elif k < 63:
                x = np.clip(np.round(rng.normal(rng.integers(-128, 128), 3.0, shape)), -128, 127)
            else:
                x = rng.integers(-128, 128, shape)
            feed[d["index"]] = x.astype(np.int8)
        feeds.append(feed)
    return feeds


def _run(buf: bytes, ops: list[_Op], n: int, seed: int) -> tuple[dict, dict]:
    """Stacks (n, *shape) of every operator input and output over n inferences, and the
    constant tensors the operators read."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    it = Interpreter(
        model_content=buf,
        experimental_op_resolver_type=OpResolverType.BUILTIN_REF,
        experimental_preserve_all_tensors=True,
    )
    it.allocate_tensors()
    wanted = {k for op in ops for k in (*op.inputs, *op.outputs)}
    consts = {}
    for d in it.get_tensor_details():
        if d["index"] in wanted and d["dtype"] == np.int32:  # MEAN axes, RESHAPE shapes
            consts[d["index"]] = it.get_tensor(d["index"])
    wanted -= set(consts)
    stacks: dict[int, list[np.ndarray]] = {k: [] for k in wanted}
    for feed in _feeds(it.get_input_details(), np.random.default_rng(seed), n):
        for index, value in feed.items():
            it.set_tensor(index, value)
        it.invoke()
        for k in wanted:
            stacks[k].append(it.get_tensor(k))
    return {k: np.ascontiguousarray(np.stack(v)) for k, v in stacks.items()}, consts


# ---- one operator through C and NumPy ---------------------------------------------------------


def _kernels(
    lib: ctypes.CDLL, tensors: list[_Tensor], op: _Op, xs: list[np.ndarray], consts: dict
) -> tuple[np.ndarray, np.ndarray]:
    """(C output, NumPy output) of ``op`` for stacked inputs xs, shaped (n, *output shape)."""
    t_in, t_out = tensors[op.inputs[0]], tensors[op.outputs[0]]
    n = xs[0].shape[0]
    out_shape = (n, *t_out.shape)
    if op.name == "SOFTMAX":
        p = cops.softmax_params(t_in.scale, op.options["beta"])
        x = xs[0]
        y = np.empty_like(x)
        depth = x.shape[-1]
        lib.kws_softmax_s8(
            _p8(x), _p8(y), x.size // depth, depth, p.input_multiplier, p.input_left_shift,
            p.diff_min,
        )  # fmt: skip
        return y, cops.softmax_s8(x, p)
    if op.name == "MEAN":
        axes = sorted(int(k) % 4 for k in consts[op.inputs[1]].ravel())
        assert axes == [1, 2] and len(t_in.shape) == 4
        x = xs[0].reshape(-1, *t_in.shape[1:])
        batches, h, w, c = x.shape
        p = cops.mean_params(t_in.scale, t_in.zero_point, t_out.scale, t_out.zero_point, h, w)
        y = np.empty((batches, c), np.int8)
        lib.kws_mean_hw_s8(
            _p8(x), _p8(y), batches, h, w, c, p.input_zero_point, p.multiplier, p.shift,
            p.output_zero_point,
        )  # fmt: skip
        return y.reshape(out_shape), cops.mean_hw_s8(x, p).reshape(out_shape)
    if op.name in POOLS:
        assert (t_in.scale, t_in.zero_point) == (t_out.scale, t_out.zero_point)
        x = xs[0].reshape(-1, *t_in.shape[1:])
        batches, h, w, c = x.shape
        p = cops.pool_params(
            h, w, c, output_scale=t_out.scale, output_zero_point=t_out.zero_point, **op.options
        )
        assert (p.out_h, p.out_w) == t_out.shape[1:3]
        y = np.empty((batches, p.out_h, p.out_w, c), np.int8)
        kind = POOLS[op.name]
        getattr(lib, f"kws_{kind}_pool_s8")(ctypes.byref(_c(PoolC, p)), _p8(x), _p8(y), batches)
        ref = cops.avg_pool_s8(x, p) if kind == "avg" else cops.max_pool_s8(x, p)
        return y.reshape(out_shape), ref.reshape(out_shape)
    if op.name == "ADD":
        t_in2 = tensors[op.inputs[1]]
        p = cops.add_params(
            t_in.scale, t_in.zero_point, t_in2.scale, t_in2.zero_point, t_out.scale,
            t_out.zero_point, op.options["activation"],
        )  # fmt: skip
        a, b = xs
        params = ctypes.byref(_c(AddC, p))
        y = np.empty(out_shape, np.int8)
        if t_in.shape == t_in2.shape:
            lib.kws_add_s8(params, _p8(a), _p8(b), _p8(y), a.size)
            return y, cops.add_s8(a, b, p)
        s1 = _i32x4(cops.broadcast_strides(t_in.shape, t_out.shape))
        s2 = _i32x4(cops.broadcast_strides(t_in2.shape, t_out.shape))
        shape4 = _i32x4((1,) * (4 - len(t_out.shape)) + t_out.shape)
        for k in range(n):
            lib.kws_add_broadcast_s8(params, _p8(a[k]), s1, _p8(b[k]), s2, shape4, _p8(y[k]))
        ref = np.stack([cops.add_s8(a[k], b[k], p) for k in range(n)])
        return y, ref
    raise AssertionError(op.name)


def _check_model(lib: ctypes.CDLL, buf: bytes, n: int, seed: int) -> dict[str, int]:
    """Compares every supported operator; returns the number of values compared per type."""
    tensors, ops = _graph(buf)
    ops = [op for op in ops if op.name in CHECKED]
    stacks, consts = _run(buf, ops, n, seed)
    counts: dict[str, int] = {}
    for op in ops:
        xs = [stacks[k] for k in op.inputs if k in stacks]
        want = stacks[op.outputs[0]]
        got_c, got_np = _kernels(lib, tensors, op, xs, consts)
        where = f"seed {seed}: {op.name} {op.options} -> tensor {op.outputs[0]}"
        np.testing.assert_array_equal(got_c, want, err_msg=f"C kernel, {where}")
        np.testing.assert_array_equal(got_np, want, err_msg=f"NumPy model, {where}")
        counts[op.name] = counts.get(op.name, 0) + want.size
    return counts


# ---- tests ------------------------------------------------------------------------------------


def test_models_contain_the_operators(models: dict[str, bytes]) -> None:
    tensors, ops = _graph(models["ops"])
    names = [op.name for op in ops]
    for name in CHECKED:
        assert name in names, names
    means = [op for op in ops if op.name == "MEAN"]
    assert {op.options["keep_dims"] for op in means} == {True, False}  # GlobalAveragePooling2D
    adds = [op for op in ops if op.name == "ADD"]
    assert any(tensors[op.inputs[0]].shape != tensors[op.inputs[1]].shape for op in adds)
    assert any(op.options["activation"] == "RELU6" for op in adds)  # fused by the converter
    pools = [op for op in ops if op.name in POOLS]
    assert {op.options["padding"] for op in pools} == {"SAME", "VALID"}
    chain = [op.name for op in _graph(models["chain"])[1]]
    assert {"CONV_2D", "FULLY_CONNECTED", *CHECKED} <= set(chain), chain


@pytest.mark.parametrize("seed", range(16))
def test_ops_are_bit_exact_with_litert_reference(
    lib: ctypes.CDLL, models: dict[str, bytes], seed: int
) -> None:
    buf = models["ops"] if seed == 0 else _variant(models["ops"], seed)
    counts = _check_model(lib, buf, n=300, seed=seed)
    assert set(counts) == CHECKED
    assert min(counts.values()) >= 300 * 5  # values compared per operator type


def test_chain_model_is_bit_exact_with_litert_reference(
    lib: ctypes.CDLL, models: dict[str, bytes]
) -> None:
    counts = _check_model(lib, models["chain"], n=300, seed=100)
    assert set(counts) == CHECKED


def test_params_known_values() -> None:
    # beta * scale * 2^26 = 2^22: multiplier 0.5 * 2^31, shift 23, radius 31 * 2^26 / 2^23
    assert cops.softmax_params(1 / 16) == cops.SoftmaxParams(1 << 30, 23, -248)
    capped = cops.softmax_params(0.5, beta=100.0)  # 2^31 - 1 at most
    assert (capped.input_multiplier, capped.input_left_shift, capped.diff_min) == (
        (1 << 31) - 1,
        31,
        0,
    )
    # mean of 7 x 7 at equal scales: 1.0 = 2^30 * 2^(1 - 31), 1/49 folded with s = 5
    p = cops.mean_params(0.1, 3, 0.1, 3, 7, 7)
    assert (p.multiplier, p.shift, p.count) == ((1 << 35) // 49, -4, 49)
    add = cops.add_params(0.5, 1, 0.25, -2, 1.0, 5, "RELU")
    assert (add.input1_offset, add.input2_offset, add.output_offset) == (-1, 2, 5)
    assert (add.input1_multiplier, add.input1_shift) == (1 << 30, 0)  # 1/2
    assert (add.input2_multiplier, add.input2_shift) == (1 << 30, -1)  # 1/4
    assert (add.output_multiplier, add.output_shift) == (1 << 30, -19)  # 1 / 2^20
    assert (add.act_min, add.act_max) == (5, 127)
    pool = cops.pool_params(
        5, 8, 3, filter_h=3, filter_w=2, stride_h=2, stride_w=3, padding="SAME",
        activation="RELU6", output_scale=0.05, output_zero_point=-100,
    )  # fmt: skip
    assert (pool.out_h, pool.out_w, pool.pad_top, pool.pad_left) == (3, 3, 1, 0)
    assert (pool.act_min, pool.act_max) == (-100, 20)
    assert cops.broadcast_strides((5,), (1, 4, 4, 5)) == (0, 0, 0, 1)
    assert cops.broadcast_strides((1, 4, 1, 5), (1, 4, 3, 5)) == (0, 5, 0, 1)
    with pytest.raises(ValueError):
        cops.broadcast_strides((2, 5), (1, 3, 5))


def test_c_structs_match_the_dataclasses() -> None:
    header = (CSRC / "kws_ops_extra.h").read_text()
    for cls, cname in ((cops.PoolParams, "kws_pool_params"), (cops.AddParams, "kws_add_params")):
        body = re.search(r"typedef struct \{([^{}]*)\}\s*" + cname + ";", header)
        assert body is not None, cname
        text = re.sub(r"/\*.*?\*/", "", body.group(1), flags=re.S)
        fields = re.findall(r"\b(\w+)\s*[,;]", text.replace("int32_t", ""))
        assert fields == [f.name for f in dataclasses.fields(cls)], cname


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="no Arm cross compiler")
def test_kernels_cross_compile_for_cortex_m4_without_library_calls(tmp_path: Path) -> None:
    obj = tmp_path / "kws_ops_extra.o"
    flags = ["-mcpu=cortex-m4", "-mthumb", *STRICT]
    subprocess.run(
        ["arm-none-eabi-gcc", *flags, "-c", str(CSRC / "kws_ops_extra.c"), "-o", str(obj)],
        check=True,
    )
    nm = shutil.which("arm-none-eabi-nm")
    if nm is not None:  # no 64-bit division helpers, no libm, nothing else
        undefined = subprocess.run([nm, "-u", str(obj)], capture_output=True, text=True, check=True)
        assert undefined.stdout.strip() == ""


_FIXED_HARNESS = """
#include "kws_fixed.h"
void t_srdhm(const int32_t *a, const int32_t *b, int32_t *out, int32_t n) {
  for (int32_t i = 0; i < n; ++i) out[i] = kws_saturating_rounding_doubling_high_mul(a[i], b[i]);
}
void t_rdbpot(const int32_t *x, const int32_t *e, int32_t *out, int32_t n) {
  for (int32_t i = 0; i < n; ++i) out[i] = kws_rounding_divide_by_pot(x[i], e[i]);
}
void t_mbqm(const int32_t *x, const int32_t *m, const int32_t *s, int32_t *out, int32_t n) {
  for (int32_t i = 0; i < n; ++i) out[i] = kws_multiply_by_quantized_multiplier(x[i], m[i], s[i]);
}
"""


def _srdhm_exact(a: int, b: int) -> int:
    """a * b / 2^31 rounded half up (gemmlowp's nudges round negative ties toward zero)."""
    if a == b == -(1 << 31):
        return (1 << 31) - 1
    return (a * b + (1 << 30)) >> 31


def _rdbpot_exact(x: int, e: int) -> int:
    """x / 2^e rounded half away from zero."""
    if e == 0:
        return x
    return (1 if x >= 0 else -1) * ((abs(x) + (1 << (e - 1))) >> e)


def _wrap(x: int) -> int:
    return ((x + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


@pytest.mark.skipif(shutil.which("cc") is None, reason="no host C compiler")
def test_fixed_point_header_rounds_like_gemmlowp(tmp_path: Path) -> None:
    """kws_fixed.h (which the convolution kernels share) against exact integer arithmetic."""
    src = tmp_path / "fixed.c"
    src.write_text(_FIXED_HARNESS)
    so = tmp_path / "libfixed.so"
    cmd = ["cc", *STRICT, f"-I{CSRC}", "-shared", "-fPIC", "-o", str(so), str(src)]
    subprocess.run(cmd, check=True)
    dll = ctypes.CDLL(str(so))
    rng = np.random.default_rng(3)
    n = 20000
    lo, hi = -(1 << 31), (1 << 31) - 1
    edge = np.array([lo, lo + 1, -(1 << 30), -1, 0, 1, 1 << 30, hi], dtype=np.int64)
    a = np.concatenate([rng.choice(edge, 2000), rng.integers(lo, hi, n - 2000, endpoint=True)])
    b = np.concatenate([rng.choice(edge, 2000), rng.integers(lo, hi, n - 2000, endpoint=True)])
    e = rng.integers(0, 32, n)
    # exact ties of the rounding division: odd multiples of 2^(e-1)
    ties = (rng.integers(-(1 << 20), 1 << 20, n) * 2 + 1) << np.maximum(e - 1, 0)
    x = np.where(rng.random(n) < 0.3, np.clip(ties, lo, hi), a)
    m = rng.integers(1 << 30, hi, n, endpoint=True)
    s = rng.integers(-31, 31, n)

    def call(name: str, *arrays: np.ndarray) -> list[int]:
        args = [np.ascontiguousarray(v, dtype=np.int32) for v in arrays]
        out = np.empty(n, np.int32)
        i32p = ctypes.POINTER(ctypes.c_int32)
        getattr(dll, name)(*[v.ctypes.data_as(i32p) for v in (*args, out)], ctypes.c_int32(n))
        return out.tolist()

    assert call("t_srdhm", a, b) == [
        _srdhm_exact(int(p), int(q)) for p, q in zip(a, b, strict=True)
    ]
    assert call("t_rdbpot", x, e) == [
        _rdbpot_exact(int(p), int(q)) for p, q in zip(x, e, strict=True)
    ]
    want = [
        _rdbpot_exact(_srdhm_exact(_wrap(int(v) << max(int(k), 0)), int(q)), max(-int(k), 0))
        for v, q, k in zip(x, m, s, strict=True)
    ]
    assert call("t_mbqm", x, m, s) == want
    # and the NumPy model of kws.export.qmath (no wrapping left shifts there: shift <= 0)
    from kws.export.qmath import multiply_by_quantized_multiplier

    for k in range(-31, 1):
        sel = np.flatnonzero(s[:4000] == k)
        got = multiply_by_quantized_multiplier(x[sel], int(m[sel[0]]), k) if sel.size else []
        assert [int(v) for v in got] == [
            _rdbpot_exact(_srdhm_exact(int(x[i]), int(m[sel[0]])), -k) for i in sel
        ]
