"""torch -> ONNX under the model-file contract, with a parity check against PyTorch.

The network is exported once, returning logits; parity is checked on those logits (what the
network computes, before the softmax flattens differences); then a softmax over the class axis is
appended so the file's output is ``probs`` as the contract (and Deepness) require, and the
metadata is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import helper

from s5geo.errors import UserError
from s5geo.export.probs import softmax_nodes
from s5geo.modelfile import ModelInfo, write_metadata

DEFAULT_TOLERANCE = 1e-3
OPSET = 18


@dataclass(frozen=True)
class ParityReport:
    """Largest absolute difference of logits between PyTorch and ONNX Runtime."""

    max_abs_diff: float
    windows: int
    tolerance: float

    @property
    def ok(self) -> bool:
        return self.max_abs_diff <= self.tolerance


def _append_softmax(path: Path) -> None:
    """Turn the single ``logits`` output into ``probs`` = softmax over the class axis."""
    model = onnx.load(str(path))
    graph = model.graph
    (logits,) = graph.output
    probs = helper.make_tensor_value_info("probs", logits.type.tensor_type.elem_type, None)
    probs.type.CopyFrom(logits.type)
    nodes, constants = softmax_nodes(logits.name, "probs")
    graph.node.extend(nodes)
    graph.initializer.extend(constants)
    graph.output.remove(logits)
    graph.output.append(probs)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def check_parity(
    model: torch.nn.Module, onnx_path: Path, windows: np.ndarray, tolerance: float
) -> ParityReport:
    """Run ``windows`` [N, C, H, W] (normalised) through both and compare the logits."""
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    worst = 0.0
    with torch.no_grad():
        for i in range(len(windows)):
            x = windows[i : i + 1].astype(np.float32)
            ref = model(torch.from_numpy(x)).float().numpy()
            try:
                got = session.run(None, {name: x})[0]
            except Exception as err:  # onnxruntime's errors share no base class but Exception
                first = str(err).splitlines()[0] if str(err) else type(err).__name__
                raise UserError(
                    f"the exported model fails on {x.shape[2]}x{x.shape[3]} px windows ({first})"
                ) from err
            worst = max(worst, float(np.max(np.abs(ref - got))))
    return ParityReport(max_abs_diff=worst, windows=len(windows), tolerance=tolerance)


def smaller_windows(windows: np.ndarray) -> np.ndarray:
    """Crops of ``windows`` at another, non-square size (3/4 x 1/2 of the tile, multiples of 32).

    A model exported with symbolic height/width is checked at this size as well: the exporter
    traces one example size, and shape arithmetic baked in at that size only shows elsewhere.
    """
    t = windows.shape[-1]
    h, w = (max(32, int(t * f) // 32 * 32) for f in (0.75, 0.5))
    return np.ascontiguousarray(windows[:, :, :h, :w])


def export_model(
    model: torch.nn.Module,
    out: Path,
    info: ModelInfo,
    windows: np.ndarray,
    *,
    dynamic_size: bool = False,
    tolerance: float = DEFAULT_TOLERANCE,
) -> ParityReport:
    """Export ``model`` (logits [N, K, T, T]) to ``out`` with the contract's metadata.

    ``windows`` are real, normalised input windows for the parity check. The batch is always
    dynamic; height and width are fixed at ``info.tile_size`` unless ``dynamic_size`` (Deepness
    cannot load models with symbolic height and width, so fixed is the default); parity is then
    also checked on :func:`smaller_windows`.
    """
    model = model.eval().float()
    t = info.tile_size
    c = len(info.bands)
    example = torch.zeros(2, c, t, t)
    batch = torch.export.Dim("batch", min=1, max=1024)
    dims: dict[int, object] = {0: batch}
    if dynamic_size:
        dims[2] = torch.export.Dim("height", min=32, max=8192)
        dims[3] = torch.export.Dim("width", min=32, max=8192)
    tmp = out.with_name(out.name + ".export-tmp.onnx")
    try:
        torch.onnx.export(
            model,
            (example,),
            str(tmp),
            input_names=["image"],
            output_names=["logits"],
            opset_version=OPSET,
            dynamo=True,
            verbose=False,  # its eight "[torch.onnx] ..." step lines; parity is reported below
            external_data=False,
            dynamic_shapes=(dims,),
        )
        report = check_parity(model, tmp, windows, tolerance)
        hint = ""
        if dynamic_size and report.ok:
            other_windows = smaller_windows(windows)
            hint = (
                f" on {other_windows.shape[2]}x{other_windows.shape[3]} px windows; export "
                f"without --dynamic-size (height and width fixed at {t} px)"
            )
            try:
                other = check_parity(model, tmp, other_windows, tolerance)
            except UserError as err:
                raise UserError(f"{err}; export without --dynamic-size") from err
            report = max(report, other, key=lambda r: r.max_abs_diff)
        if not report.ok:
            raise UserError(
                f"ONNX export differs from PyTorch by {report.max_abs_diff:.2e} "
                f"(tolerance {tolerance:.0e}){hint}; not writing {out}"
            )
        _append_softmax(tmp)
        write_metadata(tmp, info)
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    return report
