"""Inference: ONNX Runtime sessions, the window plan, streaming scene prediction. No torch."""

from s5geo.infer.predict import (
    PredictResult,
    Progress,
    ProgressFn,
    check_scene_fits,
    predict_into,
    predict_scene,
)
from s5geo.infer.runtime import Model, default_model_path, load_model, resolve_providers

__all__ = [
    "Model",
    "PredictResult",
    "Progress",
    "ProgressFn",
    "check_scene_fits",
    "default_model_path",
    "load_model",
    "predict_into",
    "predict_scene",
    "resolve_providers",
]
