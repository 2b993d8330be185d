"""Models and scenes of the large-area tests: a brightness-classing ONNX model, scene parts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from rasterio.windows import Window

from s5geo.modelfile import ModelInfo, write_metadata

NAIP_2015 = "naip/m_4709963_se_14_1_20150926.tif"
# Brightness (mean of R, G, B in 0..1) thresholds between classes: about the 20th, 40th, 60th and
# 80th percentiles of the 2015 NAIP scene, so the map holds many regions of five classes.
THRESHOLDS = (0.348, 0.446, 0.482, 0.537)


def build_brightness_model(path: Path, *, tile: int = 256, kernel: int = 1) -> Path:
    """An ONNX model that classes pixels by brightness, averaged over a ``kernel`` x ``kernel``
    neighbourhood (zero-padded at the window's edge, so windows with context differ from
    windows without: the blend of overlapping windows then decides the map near edges).

    Scores ``k * s * x - s * sum(thresholds[:k])`` for class k make the argmax the number of
    thresholds below the brightness x.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    s, k = 40.0, len(THRESHOLDS) + 1
    weights = np.zeros((k, 3, kernel, kernel), np.float32)
    for c in range(k):
        weights[c] = c * s / (3 * kernel * kernel)
    bias = np.array([-s * sum(THRESHOLDS[:c]) for c in range(k)], np.float32)
    pad = kernel // 2
    graph = helper.make_graph(
        [
            helper.make_node(
                "Conv",
                ["image", "w", "b"],
                ["scores"],
                kernel_shape=[kernel, kernel],
                pads=[pad] * 4,
            ),
            helper.make_node("Softmax", ["scores"], ["probs"], axis=1),
        ],
        "brightness",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, tile, tile])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", k, tile, tile])],
        initializer=[numpy_helper.from_array(weights, "w"), numpy_helper.from_array(bias, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    names = ("water", "forest", "urban", "crops", "bare")
    info = ModelInfo(
        class_names=dict(enumerate(names)),
        class_colors={0: "#0000FF", 1: "#00FF00", 2: "#FF0000", 3: "#FFFF00", 4: "#A0522D"},
        tile_size=tile,
        overlap_pct=25.0,
        bands=(1, 2, 3),
        input_scale=255.0,
        mean=(0.0, 0.0, 0.0),
        std=(1.0, 1.0, 1.0),
        architecture="brightness-test",
    )
    write_metadata(path, info)
    return path


def write_part(scene: Path, window: Window, out: Path) -> Path:
    """The ``window`` of ``scene`` as a GeoTIFF of its own (georeferenced where it lies)."""
    with rasterio.open(scene) as ds:
        profile = dict(
            ds.profile, width=int(window.width), height=int(window.height),
            transform=ds.window_transform(window),
        )  # fmt: skip
        with rasterio.open(out, "w", **profile) as part:
            part.write(ds.read(window=window))
    return out
