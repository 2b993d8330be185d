"""A fitted model's reference confidence: how sure it is on the scenes it was fitted on.

Recorded in the model file as ``s5geo.reference_confidence`` so that ``s5geo predict`` can warn
when a scene is much less familiar to the model (:mod:`s5geo.infer.familiarity`). It is measured
the way the predictor measures a scene, on up to 2 x 2 tiles spread over each training scene:
a few seconds, where the whole scenes could take minutes.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import rasterio
from rasterio.windows import Window

from s5geo.fit.samples import MARGIN, read_tile
from s5geo.fit.scaling import BandScaling
from s5geo.infer.familiarity import ConfidenceMeter

PER_SIDE = 2


def _offsets(size: int, tile: int) -> list[int]:
    """Tile origins spread evenly over one side (one tile when the scene is smaller)."""
    if size <= tile:
        return [0]
    return sorted({(size - tile) * i // (PER_SIDE - 1) for i in range(PER_SIDE)})


def reference_confidence(
    model: onnx.ModelProto,
    scenes: list[rasterio.DatasetReader],
    scaling: BandScaling,
    tile: int,
) -> float | None:
    """Mean highest class probability of ``model`` over tiles of ``scenes`` (valid pixels)."""
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    session = ort.InferenceSession(
        model.SerializeToString(), opts, providers=["CPUExecutionProvider"]
    )
    meter = ConfidenceMeter()
    core = tile - 2 * MARGIN
    for ds in scenes:
        for row in _offsets(ds.height, tile):
            for col in _offsets(ds.width, tile):
                x, valid = read_tile(
                    ds, Window(col + MARGIN, row + MARGIN, core, core), tile, scaling
                )
                if valid.any():
                    probs = session.run(None, {"image": x})[0][0]
                    meter.add(np.asarray(probs), valid)
    return meter.mean
