"""The ATen operators torch-tensorrt converts to TensorRT layers, and a graph checker.

Source (read, not guessed): ``py/torch_tensorrt/dynamo/conversion/aten_ops_converters.py``
of pytorch/TensorRT at commit ``8f1076616ffe7870ae72f9537e06b94e87b5c891`` (a 2.x
dynamo-frontend snapshot: ``_ConverterRegistry`` with ``supports_dynamic_shapes``; the
index holds no version tag for it, so treat it as "torch-tensorrt 2.x, main of 2024").
Every ``@dynamo_tensorrt_converter(torch.ops.aten.X.Y)`` target of that file is listed,
with the capability validators that matter for our graphs. ``upsample_*.vec`` are
mapped to ``.default`` by ``py_impl`` overrides in the same file. Assert nodes are
erased by ``lowering/passes/remove_assert_nodes.py``.

On top of that snapshot, the project applies rules from later releases' notes
(``docs`` of main, 2026): pooling with ``ceil_mode=True`` falls back to PyTorch, so it
is refused; so are data-dependent or dynamic shapes (one static engine per stream
resolution).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

__all__ = [
    "TRT_OPS_SOURCE",
    "TRT_OPS_VERSION",
    "CONVERTED_OPS",
    "REMOVED_BEFORE_CONVERSION",
    "DATA_DEPENDENT_OPS",
    "TO_COPY_DTYPES",
    "ReadinessReport",
    "check_graph",
    "trt_decompositions",
]

TRT_OPS_SOURCE = "pytorch/TensorRT py/torch_tensorrt/dynamo/conversion/aten_ops_converters.py"
TRT_OPS_VERSION = "torch-tensorrt 2.x dynamo frontend @ 8f1076616ffe7870ae72f9537e06b94e87b5c891"


def _expand(spec: dict[str, tuple[str, ...]]) -> frozenset[str]:
    return frozenset(f"aten.{op}.{ov}" for op, overloads in spec.items() for ov in overloads)


_D = ("default",)
CONVERTED_OPS: frozenset[str] = _expand(
    {
        # normalisation
        "native_batch_norm": _D, "batch_norm": _D, "_native_batch_norm_legit_no_training": _D,
        "native_layer_norm": _D, "layer_norm": _D, "native_group_norm": _D, "group_norm": _D,
        # structure
        "cat": _D, "embedding": _D, "embedding_bag": _D, "_embedding_bag": _D,
        "squeeze": ("dim", "dims"), "unsqueeze": _D, "split": ("Tensor", "sizes"), "split_with_sizes": _D,
        "select": ("int",), "slice": ("Tensor",), "index": ("Tensor",), "index_put": _D, "index_select": _D,
        "gather": _D, "scatter": ("src", "value"), "cumsum": _D, "tile": _D, "as_strided": _D,
        "permute": _D, "clone": _D, "_to_copy": _D, "copy": _D, "expand": _D, "reshape": _D, "view": _D,
        "pixel_shuffle": _D, "pixel_unshuffle": _D, "resize_": _D, "flip": _D, "diagonal": _D, "roll": _D,
        "sym_size": ("int",), "scalar_tensor": _D, "arange": ("start_step",), "full": _D,
        # activations / unary
        "relu": _D, "sigmoid": _D, "tanh": _D, "leaky_relu": _D, "elu": _D, "softplus": _D,
        "hardsigmoid": _D, "gelu": _D, "_prelu_kernel": _D, "_softmax": _D, "native_dropout": _D,
        "rsqrt": _D, "neg": _D, "erf": _D, "exp": _D, "expm1": _D, "log": _D, "log2": _D, "log10": _D,
        "log1p": _D, "sqrt": _D, "reciprocal": _D, "abs": _D, "sin": _D, "cos": _D, "tan": _D,
        "sinh": _D, "cosh": _D, "asin": _D, "acos": _D, "atan": _D, "asinh": _D, "acosh": _D,
        "atanh": _D, "ceil": _D, "floor": _D, "trunc": _D, "round": _D, "sign": _D, "logical_not": _D,
        "isinf": _D, "isnan": _D, "bitwise_not": _D,
        # binary / elementwise
        "add": ("Tensor", "Scalar"), "sub": ("Tensor", "Scalar"), "mul": ("Tensor", "Scalar"),
        "div": ("Tensor", "Tensor_mode", "Scalar", "Scalar_mode"),
        "pow": ("Tensor_Tensor", "Scalar", "Tensor_Scalar"), "floor_divide": ("default", "Scalar"),
        "remainder": ("Scalar", "Tensor"), "fmod": ("Scalar", "Tensor"), "atan2": ("default", "out"),
        "maximum": _D, "minimum": _D, "where": ("self",),
        "clamp": ("default", "Tensor"), "clip": ("default", "Tensor"),
        "logical_and": _D, "logical_or": _D, "logical_xor": _D,
        "bitwise_and": ("Tensor", "Scalar", "Scalar_Tensor"),
        "bitwise_or": ("Tensor", "Scalar", "Scalar_Tensor"),
        "bitwise_xor": ("Tensor", "Scalar", "Scalar_Tensor"),
        "eq": ("Tensor", "Scalar"), "ne": ("Tensor", "Scalar"), "gt": ("Tensor", "Scalar"),
        "ge": ("Tensor", "Scalar"), "lt": ("Tensor", "Scalar"), "le": ("Tensor", "Scalar"),
        # reductions
        "amax": _D, "amin": _D, "sum": ("default", "dim_IntList"), "prod": ("default", "dim_int"),
        "max": ("default", "dim"), "min": ("default", "dim"), "mean": ("default", "dim"),
        "any": ("default", "dim", "dims"), "argmax": _D, "argmin": _D, "topk": _D, "sort": _D,
        # linear algebra
        "mm": _D, "mv": _D, "bmm": _D, "dot": _D, "addmm": _D, "linear": _D,
        "_cdist_forward": _D, "_pdist_forward": _D,
        # convolution, pooling, padding, resampling
        "convolution": _D,
        "avg_pool1d": _D, "avg_pool2d": _D, "avg_pool3d": _D,
        "max_pool1d": _D, "max_pool2d": _D, "max_pool3d": _D,
        "adaptive_avg_pool1d": _D, "adaptive_avg_pool2d": _D, "_adaptive_avg_pool2d": _D,
        "adaptive_avg_pool3d": _D, "_adaptive_avg_pool3d": _D,
        "constant_pad_nd": _D, "pad": _D, "_pad_circular": _D,
        "reflection_pad1d": _D, "reflection_pad2d": _D, "reflection_pad3d": _D,
        "replication_pad1d": _D, "replication_pad2d": _D, "replication_pad3d": _D,
        "grid_sampler": _D, "grid_sampler_2d": _D,
        "upsample_nearest1d": ("default", "vec"), "upsample_nearest2d": ("default", "vec"),
        "upsample_nearest3d": ("default", "vec"), "upsample_linear1d": ("default", "vec"),
        "upsample_bilinear2d": ("default", "vec"), "upsample_trilinear3d": ("default", "vec"),
        "upsample_bicubic2d": ("default", "vec"),
    }
) | frozenset({"prims.sum.default", "prims.div.default"})

#: erased by torch-tensorrt's lowering before conversion (remove_assert_nodes.py).
REMOVED_BEFORE_CONVERSION: frozenset[str] = frozenset({"aten._assert_tensor_metadata.default", "aten._assert_scalar.default"})

#: operators whose output shape depends on tensor values.
DATA_DEPENDENT_OPS: frozenset[str] = frozenset(
    {
        "aten.nonzero.default", "aten.masked_select.default", "aten._unique2.default", "aten.unique_dim.default",
        "aten.unique_consecutive.default", "aten._local_scalar_dense.default", "aten.item.default",
        "aten.repeat_interleave.Tensor", "aten.index.Tensor_hacked_twin",
    }
)

#: dtypes ``aten._to_copy`` may cast to inside an engine (to_copy_dtype_validator).
TO_COPY_DTYPES: frozenset[torch.dtype] = frozenset({torch.float32, torch.int32, torch.int64, torch.bool, torch.int8, torch.float16})

_POOL_CEIL_ARG = {  # position of ceil_mode in the op's schema
    "aten.avg_pool1d.default": 4, "aten.avg_pool2d.default": 4, "aten.avg_pool3d.default": 4,
    "aten.max_pool1d.default": 5, "aten.max_pool2d.default": 5, "aten.max_pool3d.default": 5,
}


def trt_decompositions() -> dict:
    """Decomposition table used before checking / compiling: core ATen, plus
    ``aten.alias`` (a no-op view that full-extent crops leave; no converter exists for
    it) rewritten as an identity ``aten.view``."""
    aten = torch.ops.aten
    table = torch.export.default_decompositions()
    table[aten.alias.default] = lambda x: aten.view.default(x, list(x.shape))
    return table


@dataclass
class ReadinessReport:
    """Result of :func:`check_graph`; ``ok`` when the whole graph can become one engine."""

    ops: set[str] = field(default_factory=set)
    unconverted: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.unconverted and not self.problems

    def summary(self) -> str:
        if self.ok:
            return f"TensorRT-ready: {len(self.ops)} operator types, all converted"
        parts = []
        if self.unconverted:
            parts.append("not converted: " + ", ".join(sorted(self.unconverted)))
        parts.extend(self.problems)
        return "; ".join(parts)


def _op_name(target) -> str:
    if isinstance(target, torch._ops.OpOverload):
        return f"{target.namespace}.{target._schema.name.split('::', 1)[-1]}.{target._overloadname}"
    return getattr(target, "__qualname__", None) or str(target)


def _static(val) -> bool:
    if isinstance(val, torch.Tensor):
        return all(isinstance(d, int) for d in val.shape)
    if isinstance(val, (list, tuple)):
        return all(_static(v) for v in val)
    return not isinstance(val, (torch.SymInt, torch.SymFloat, torch.SymBool))


def check_graph(program: torch.export.ExportedProgram, allow_uint8_cast: bool = False) -> ReadinessReport:
    """Check that an exported (and decomposed, see :func:`trt_decompositions`) program
    converts completely to TensorRT at a static shape.

    Args:
        program: the ExportedProgram.
        allow_uint8_cast: accept ``_to_copy`` to uint8 (the final cast of a uint8-out
            graph, which torch-tensorrt leaves to PyTorch) without calling it a problem.
    """
    rep = ReadinessReport()
    for node in program.graph.nodes:
        if node.op in ("placeholder", "output", "get_attr"):
            if node.op == "placeholder" and not _static(node.meta.get("val")):
                rep.problems.append(f"input {node.name} has a dynamic shape")
            continue
        if node.op != "call_function":
            rep.problems.append(f"node {node.name} is a {node.op}, not an operator call")
            continue
        name = _op_name(node.target)
        if name == "_operator.getitem" or name == "getitem":
            continue
        rep.ops.add(name)
        if not _static(node.meta.get("val")):
            rep.problems.append(f"{name} ({node.name}) has a data-dependent or dynamic output shape")
        if name in DATA_DEPENDENT_OPS:
            rep.problems.append(f"{name} has a data-dependent output shape")
            continue
        if name in REMOVED_BEFORE_CONVERSION:
            continue
        if name not in CONVERTED_OPS:
            rep.unconverted.add(name)
            continue
        if name in _POOL_CEIL_ARG:
            i = _POOL_CEIL_ARG[name]
            if len(node.args) > i and node.args[i]:
                rep.problems.append(f"{name} ({node.name}) uses ceil_mode=True (falls back to PyTorch)")
            if name.startswith("aten.avg_pool") and len(node.args) > 6 and node.args[6] is not None:
                rep.problems.append(f"{name} ({node.name}) uses divisor_override (not converted)")
            if name.startswith("aten.max_pool"):
                dil = node.args[4] if len(node.args) > 4 else 1
                dil = dil if isinstance(dil, (list, tuple)) else [dil]
                if any(d != 1 for d in dil):
                    rep.problems.append(f"{name} ({node.name}) uses dilation != 1 (not converted)")
        elif name == "aten.convolution.default":
            if len(node.args) > 7 and any(p != 0 for p in node.args[7]):
                rep.problems.append(f"{name} ({node.name}) has output_padding != 0 (needs torch-tensorrt >= 2.7)")
        elif name == "aten._to_copy.default":
            dtype = node.kwargs.get("dtype")
            if dtype not in TO_COPY_DTYPES and not (allow_uint8_cast and dtype == torch.uint8):
                rep.problems.append(f"{name} ({node.name}) casts to {dtype} (left to PyTorch)")
    return rep
