"""Record a model's reference confidence: its mean confidence on imagery of its own kind.

    python scripts/reference_confidence.py MODEL.onnx IMAGE [IMAGE ...]
    python scripts/reference_confidence.py s5geo/resources/default.onnx \\
        "$S5GEO_DATA"/dubai/images/Tile2_*.jpg          # the bundled model: Dubai's val tile

Runs the streaming predictor over each image, averages the per-image mean highest class
probability (s5geo.infer.familiarity), and writes it as ``s5geo.reference_confidence`` into the
model's metadata (in place; needs the ``onnx`` package). `s5geo predict` warns when a scene's mean
confidence falls more than 0.10 below it. Use validation imagery, never test imagery. Prints the
per-image values and the spread, so the margin can be checked against them.
"""

from __future__ import annotations

import sys
import tempfile
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np

from s5geo.infer import load_model, predict_scene
from s5geo.modelfile import write_metadata


def main() -> None:
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    model_path, images = Path(sys.argv[1]), sys.argv[2:]
    model = load_model(model_path)
    means = []
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # JPEGs without georeferencing
        for image in images:
            result = predict_scene(image, Path(tmp) / "map.tif", model=model, overwrite=True)
            assert result.mean_confidence is not None
            means.append(result.mean_confidence)
            print(f"{Path(image).name}: {result.mean_confidence:.3f}")
    reference = float(np.mean(means))
    print(f"reference {reference:.4f} (per-image std {np.std(means):.4f}, min {min(means):.3f})")
    write_metadata(model_path, replace(model.info, reference_confidence=reference))


if __name__ == "__main__":
    main()
