"""Static-shape ``torch.export`` of the models' inference graphs.

Video has one resolution per session, so every graph is exported at a static shape.
The models pad H and W internally (replicate, bottom/right) to ``model.pad_multiple``
(a multiple of 2**depth of their U-Nets) with Python-int arithmetic, so at a static
shape the padding and the crop back are constants and the exported graph has no
dynamic or data-dependent shapes.

Wrappers:

* :class:`EstimateModule` / :class:`RenderModule` — the two halves the real-time
  pipeline calls (temporal smoothing sits between them);
* :class:`FullModule` — the whole graph (network + Retinex recomposition), optionally
  uint8 in and out, NHWC (as decoded video frames) or NCHW.
"""
from __future__ import annotations

import logging

import torch
from torch import Tensor, nn

from ..convert import u8_from_unit, unit_from_u8
from ..errors import ExportError

logger = logging.getLogger(__name__)

__all__ = ["EstimateModule", "RenderModule", "FullModule", "example_input", "export_model", "export_parts", "graph_ops"]


class EstimateModule(nn.Module):
    """``estimate`` as a module; returns ``illum`` alone when the model has no ``aux``."""

    def __init__(self, model: nn.Module, has_aux: bool):
        super().__init__()
        self.model = model
        self.has_aux = has_aux

    def forward(self, x: Tensor):
        aux, illum = self.model.estimate(x)
        if self.has_aux:
            return aux, illum
        return illum


class RenderModule(nn.Module):
    """``render`` as a module: ``(x, aux, illum)`` or ``(x, illum)`` when there is no ``aux``."""

    def __init__(self, model: nn.Module, has_aux: bool):
        super().__init__()
        self.model = model
        self.has_aux = has_aux

    def forward(self, x: Tensor, *rest: Tensor) -> Tensor:
        if self.has_aux:
            aux, illum = rest
            return self.model.render(x, aux, illum)
        (illum,) = rest
        return self.model.render(x, None, illum)


class FullModule(nn.Module):
    """The whole inference graph, ``render(x, *estimate(x))``.

    Args:
        model: an enhancement model.
        uint8: take and return uint8 values in [0, 255] instead of floats in [0, 1].
        layout: "nchw" (N, 3, H, W) or "nhwc" (N, H, W, 3) for input and output.
    """

    def __init__(self, model: nn.Module, uint8: bool = False, layout: str = "nchw"):
        super().__init__()
        if layout not in ("nchw", "nhwc"):
            raise ValueError(f"layout must be 'nchw' or 'nhwc', got {layout!r}")
        self.model = model
        self.uint8 = uint8
        self.layout = layout

    def forward(self, x: Tensor) -> Tensor:
        if self.layout == "nhwc":
            x = x.permute(0, 3, 1, 2)
        if self.uint8:
            x = unit_from_u8(x, next(self.model.parameters()).dtype)
        aux, illum = self.model.estimate(x)
        y = self.model.render(x, aux, illum)
        if self.uint8:
            y = u8_from_unit(y)
        if self.layout == "nhwc":
            y = y.permute(0, 2, 3, 1).contiguous()
        return y


def example_input(
    shape: tuple[int, int],
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    uint8: bool = False,
    layout: str = "nchw",
    batch: int = 1,
) -> Tensor:
    """A random input of the static shape ``(H, W)`` for export or compilation."""
    h, w = int(shape[0]), int(shape[1])
    dims = (batch, 3, h, w) if layout == "nchw" else (batch, h, w, 3)
    if uint8:
        return torch.randint(0, 256, dims, dtype=torch.uint8, device=device)
    return torch.rand(dims, dtype=dtype, device=device)


def export_model(
    model: nn.Module,
    shape: tuple[int, int],
    *,
    uint8: bool = False,
    layout: str = "nchw",
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    decompose: bool = True,
) -> torch.export.ExportedProgram:
    """Export the whole inference graph of ``model`` at the static frame shape ``(H, W)``.

    The model must already be on ``device`` in ``dtype`` and in eval mode. With
    ``decompose`` the graph is lowered to core ATen (:func:`realtime.backends.trt_ops.trt_decompositions`),
    the operator set TensorRT's converters are written for.

    Raises:
        ExportError: ``torch.export`` failed (the cause is chained).
    """
    mod = FullModule(model, uint8=uint8, layout=layout).eval()
    x = example_input(shape, device, dtype, uint8=uint8, layout=layout)
    return _export(mod, (x,), f"{type(model).__name__} at {shape[0]}x{shape[1]}", decompose)


def export_parts(
    model: nn.Module,
    shape: tuple[int, int],
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    decompose: bool = True,
) -> tuple[torch.export.ExportedProgram, torch.export.ExportedProgram, tuple[Tensor, ...], tuple[Tensor, ...], bool]:
    """Export ``estimate`` and ``render`` separately at the static frame shape ``(H, W)``.

    Returns:
        (estimate program, render program, estimate example inputs, render example
        inputs, whether the model has an ``aux`` output).

    Raises:
        ExportError: ``torch.export`` failed.
    """
    x = example_input(shape, device, dtype)
    with torch.no_grad():
        aux, illum = model.estimate(x)
    has_aux = aux is not None
    est = EstimateModule(model, has_aux).eval()
    ren = RenderModule(model, has_aux).eval()
    ren_args = (x, aux, illum) if has_aux else (x, illum)
    what = f"{type(model).__name__} at {shape[0]}x{shape[1]}"
    return (
        _export(est, (x,), f"estimate of {what}", decompose),
        _export(ren, ren_args, f"render of {what}", decompose),
        (x,),
        ren_args,
        has_aux,
    )


def _export(mod: nn.Module, args: tuple[Tensor, ...], what: str, decompose: bool) -> torch.export.ExportedProgram:
    from .trt_ops import trt_decompositions

    try:
        with torch.no_grad():
            ep = torch.export.export(mod, args, strict=False)
            return ep.run_decompositions(trt_decompositions()) if decompose else ep
    except Exception as err:  # torch.export raises many types; re-raise typed with the cause
        raise ExportError(f"torch.export failed for {what}: {type(err).__name__}: {err}") from err


def graph_ops(program: torch.export.ExportedProgram) -> set[str]:
    """Names of the operators (``aten.convolution.default`` ...) called in ``program``'s graph."""
    ops = set()
    for node in program.graph.nodes:
        if node.op == "call_function":
            ops.add(_op_name(node.target))
    return ops


def _op_name(target) -> str:
    from .trt_ops import _op_name as name

    return name(target)
