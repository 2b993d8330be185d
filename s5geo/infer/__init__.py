"""Inference: ONNX Runtime sessions, the window plan, streaming scene prediction.

Holds execution-provider choice and model loading (``runtime``), the checks before work
(``checks``, ``memory``), where the windows go (``planning``, ``tiling``), reading them into
batches (``batches``), streaming blending of overlapping windows (``blend``), resizing back to the
scene grid (``resample``), writing the finished rows (``writing``) and scene prediction into a
class COG (``predict``). Deployment install, no torch.

May import: ``s5geo.io``, ``s5geo.modelfile``, ``s5geo.options``, ``s5geo.errors`` and
``s5geo.__version__``.
"""

from s5geo.errors import ParameterError
from s5geo.infer.checks import check_scene_fits
from s5geo.infer.predict import (
    BlockResult,
    PredictResult,
    Progress,
    ProgressFn,
    plan_blocks,
    predict_block,
    predict_into,
    predict_scene,
    write_prediction,
)
from s5geo.infer.runtime import Model, default_model_path, load_model, resolve_providers
from s5geo.options import PredictOptions

__all__ = [
    "BlockResult",
    "Model",
    "ParameterError",
    "PredictOptions",
    "PredictResult",
    "Progress",
    "ProgressFn",
    "check_scene_fits",
    "default_model_path",
    "load_model",
    "plan_blocks",
    "predict_block",
    "predict_into",
    "predict_scene",
    "resolve_providers",
    "write_prediction",
]
