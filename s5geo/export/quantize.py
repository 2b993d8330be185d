"""Reduced-precision versions of an exported model: FP16 and static INT8.

FP16 (onnxconverter-common) halves the file and speeds up GPUs; INT8 static quantization (ONNX
Runtime's quantizer, QDQ format, per-channel weights) speeds up CPUs. INT8 is calibrated on real,
normalised input windows: activation ranges learnt from random data would be wrong.
Metadata is carried over, and ``s5geo.recipe`` records the precision.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx

from s5geo.export.fusions import hard_swish_for_int8
from s5geo.export.probs import PROBS_PREFIX


def _copy_metadata(src: onnx.ModelProto, dst_path: Path, precision: str) -> None:
    dst = onnx.load(str(dst_path))
    props = {p.key: p.value for p in src.metadata_props}
    recipe = json.loads(props.get("s5geo.recipe", "{}") or "{}")
    recipe["precision"] = precision
    props["s5geo.recipe"] = json.dumps(recipe)
    del dst.metadata_props[:]
    for key, value in props.items():
        entry = dst.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(dst, str(dst_path))


def to_fp16(src: Path, out: Path) -> None:
    """Weights and arithmetic in float16; inputs and outputs stay float32 (the contract)."""
    from onnxconverter_common import float16

    model = onnx.load(str(src))
    with warnings.catch_warnings():
        # One warning per weight tensor holding a value outside float16's range, clamped to it
        # (below: "the float32 number -5e-10 will be truncated to -1e-07", a dozen for the
        # ResNet-10t student; above 65504 alike): nothing a user can act on; the export reports
        # the FP16 file's agreement with FP32 instead.
        warnings.filterwarnings("ignore", message="the float32 number .* will be truncated")
        half = float16.convert_float_to_float16(model, keep_io_types=True)
    onnx.save(half, str(out))
    _copy_metadata(model, out, "fp16")


class _QuietPerTensorFallback(logging.Filter):
    """Drops the quantizer's "Axis 1 is out-of-range for weight" warnings, printed on the root
    logger once per use of a rank-1 scale: GroupNorm (every FPN student's decoder) is exported as
    InstanceNormalization with a 1-D scale, which has no channel axis, and the quantizer then
    quantizes that scale per tensor, as it should. The warnings said nothing a user can act on."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "is out-of-range for weight" not in record.getMessage()


class _WindowReader:
    """ONNX Runtime calibration reader over normalised windows [N, C, T, T], one at a time."""

    def __init__(self, input_name: str, windows: np.ndarray) -> None:
        self._items: Iterator[dict[str, np.ndarray]] = (
            {input_name: windows[i : i + 1].astype(np.float32)} for i in range(len(windows))
        )

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._items, None)


def to_int8(src: Path, out: Path, windows: np.ndarray) -> None:
    """Static INT8 (QDQ, per-channel weights) calibrated on ``windows``."""
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    model = onnx.load(str(src))
    prepared = out.with_name(out.name + ".prep.onnx")
    quiet = _QuietPerTensorFallback()
    try:
        quant_pre_process(str(src), str(prepared), skip_symbolic_shape=True)
        pre = onnx.load(str(prepared))
        if hard_swish_for_int8(pre):  # in operators kept in 8 bits (fusions.py)
            onnx.save(pre, str(prepared))
        logging.getLogger().addFilter(quiet)
        quantize_static(
            str(prepared),
            str(out),
            _WindowReader(model.graph.input[0].name, windows),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            # The final softmax stays in float: quantizing probabilities would coarsen them.
            # (ONNX Runtime 1.32's quantizer leaves these op types in float anyway; excluded by
            # name so a quantizer that learns them does not change that.)
            nodes_to_exclude=[n.name for n in model.graph.node if n.name.startswith(PROBS_PREFIX)],
        )
    finally:
        logging.getLogger().removeFilter(quiet)
        prepared.unlink(missing_ok=True)
    _copy_metadata(model, out, "int8")
