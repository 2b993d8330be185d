"""Inference: ONNX Runtime sessions, the window plan, streaming scene prediction.

Holds execution-provider choice and model loading (``runtime``), the window plan and blend
weights (``tiling``), streaming blending of overlapping windows (``blend``), resizing back to the
scene grid (``resample``), the memory check before work (``memory``) and scene prediction into a
class COG (``predict``). Deployment install, no torch.

May import: ``s5geo.io``, ``s5geo.modelfile``, ``s5geo.errors`` and ``s5geo.__version__``.
"""

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
