"""Fitting a model for the user's own area from a few labels (``s5geo fit``).

Holds label reading, scene-derived scaling, the per-pixel feature graph, the classifier and its
spatial cross-validation, the fitted ONNX model file and the report. Imports ``s5geo.io``,
``s5geo.infer`` and ``s5geo.modelfile``; nothing here needs torch (the deployment install).
"""

from s5geo.fit.run import FitResult, fit_model

__all__ = ["FitResult", "fit_model"]
