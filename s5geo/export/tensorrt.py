"""TensorRT engines through ONNX Runtime's TensorRT execution provider.

Building an engine takes minutes, so it is done once at export time and cached on disk; later
sessions (``s5geo predict --providers tensorrt``) find it in the same cache folder
(``s5geo.infer.runtime``'s provider options point there).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

from s5geo.errors import UserError, install_hint
from s5geo.infer.runtime import load_model

TRT = "TensorrtExecutionProvider"


def tensorrt_available() -> bool:
    return TRT in ort.get_available_providers()


def require_tensorrt() -> None:
    """Raise a :class:`UserError` saying what to install when the TensorRT provider is missing.

    ``s5geo export --tensorrt`` asks this before exporting anything: a missing provider is known
    at once, not after minutes of export and calibration, and no file is left half-asked-for.
    """
    if not tensorrt_available():
        raise UserError(
            "the TensorRT execution provider is not available in this ONNX Runtime "
            f"({', '.join(ort.get_available_providers())}); it comes with onnxruntime-gpu: on a "
            f"machine with an NVIDIA GPU, CUDA and TensorRT, {install_hint('gpu')}; "
            "or export without --tensorrt"
        )


def build_engine(model_path: Path, batch_size: int = 4) -> Path:
    """Build (or reuse) the TensorRT engine of ``model_path`` by running one batch through it."""
    require_tensorrt()
    model = load_model(model_path, providers=["tensorrt", "cuda", "cpu"])
    if model.provider != TRT:
        raise UserError(f"ONNX Runtime fell back to {model.provider}: TensorRT could not run it")
    t = model.info.tile_size
    model.run(np.zeros((batch_size, len(model.info.bands), t, t), np.float32))
    options = model.session.get_provider_options()[TRT]
    return Path(options["trt_engine_cache_path"])
