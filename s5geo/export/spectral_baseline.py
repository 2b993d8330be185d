"""A rule-based spectral baseline written directly as an ONNX graph: the bundled stand-in model.

It is not trained: it computes per-pixel spectral indices from red, green, blue and near-infrared
reflectance (NDVI for vegetation, NDWI for open water, mean visible brightness for built-up and
other bright surfaces), scores the classes as linear functions of them, smooths the scores with a
5x5 box filter and turns them into probabilities with a softmax. It obeys the model-file contract
exactly, so the whole deployment path (tiling, blending, COG, polygons, QGIS styles) runs end to
end on 4-band imagery such as NAIP before a trained student is bundled (the distillation issue
replaces it).

Rebuild it with ``python -m s5geo.export.spectral_baseline OUT.onnx`` (needs ``onnx``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from s5geo import __version__
from s5geo.modelfile import ModelInfo, write_metadata

TILE = 512
CLASSES = {0: "water", 1: "vegetation", 2: "bare soil", 3: "built-up"}
COLORS = {0: "#2B6CB0", 1: "#2F855A", 2: "#D69E2E", 3: "#C53030"}
# Rows: classes; columns: NDVI, NDWI, brightness; then each class's bias. Bare soil is the
# reference class (score 0).
WEIGHTS = np.array(
    [
        [0.0, 25.0, 0.0],  # water: NDWI = (G - N) / (G + N) above about -0.08
        [25.0, 0.0, 0.0],  # vegetation: NDVI above 0.25
        [0.0, 0.0, 0.0],  # bare soil
        [-10.0, 0.0, 25.0],  # built-up: bright and not green
    ],
    np.float32,
)
BIAS = np.array([2.0, -6.25, 0.0, -15.0], np.float32)
SMOOTH = 5


def build(path: str | Path) -> ModelInfo:
    """Write the baseline model with its metadata to ``path`` and return that metadata."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    k = len(CLASSES)
    box = np.full((k, 1, SMOOTH, SMOOTH), 1.0 / SMOOTH**2, np.float32)
    eps = numpy_helper.from_array(np.array(1e-6, np.float32), "eps")
    third = numpy_helper.from_array(np.array(1.0 / 3.0, np.float32), "third")

    def band(i: int) -> onnx.NodeProto:
        return helper.make_node("Slice", ["image", f"s{i}", f"e{i}", "axis1"], [f"band{i}"])

    def index(name: str, a: str, b: str) -> list[onnx.NodeProto]:
        """(a - b) / (a + b + eps), a normalised difference index."""
        return [
            helper.make_node("Sub", [a, b], [f"{name}_num"]),
            helper.make_node("Add", [a, b], [f"{name}_sum"]),
            helper.make_node("Add", [f"{name}_sum", "eps"], [f"{name}_den"]),
            helper.make_node("Div", [f"{name}_num", f"{name}_den"], [name]),
        ]

    nodes = [band(i) for i in range(4)]
    nodes += index("ndvi", "band3", "band0") + index("ndwi", "band1", "band3")
    nodes += [
        helper.make_node("Add", ["band0", "band1"], ["rg"]),
        helper.make_node("Add", ["rg", "band2"], ["rgb"]),
        helper.make_node("Mul", ["rgb", "third"], ["bright"]),
        helper.make_node("Concat", ["ndvi", "ndwi", "bright"], ["features"], axis=1),
        helper.make_node("Conv", ["features", "w", "b"], ["scores"], kernel_shape=[1, 1]),
        helper.make_node(
            "Conv", ["scores", "box"], ["smooth"], kernel_shape=[SMOOTH, SMOOTH],
            pads=[SMOOTH // 2] * 4, group=k,
        ),
        helper.make_node("Softmax", ["smooth"], ["probs"], axis=1),
    ]  # fmt: skip
    consts = [eps, third]
    for i in range(4):
        consts.append(numpy_helper.from_array(np.array([i], np.int64), f"s{i}"))
        consts.append(numpy_helper.from_array(np.array([i + 1], np.int64), f"e{i}"))
    consts.append(numpy_helper.from_array(np.array([1], np.int64), "axis1"))
    graph = helper.make_graph(
        nodes,
        "s5geo_spectral_baseline",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 4, TILE, TILE])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", k, TILE, TILE])],
        initializer=[
            *consts,
            numpy_helper.from_array(WEIGHTS[:, :, None, None], "w"),
            numpy_helper.from_array(BIAS, "b"),
            numpy_helper.from_array(box, "box"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # readable by ONNX Runtime >= 1.10 (QGIS users' older installs)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    info = ModelInfo(
        class_names=dict(CLASSES),
        class_colors=dict(COLORS),
        tile_size=TILE,
        overlap_pct=10.0,
        bands=(1, 2, 3, 4),  # red, green, blue, near-infrared (NAIP's order)
        input_scale=255.0,
        mean=(0.0, 0.0, 0.0, 0.0),
        std=(1.0, 1.0, 1.0, 1.0),
        resolution_cm=0.0,  # per-pixel rules: valid at any ground sample distance
        version=__version__,
        architecture="spectral-baseline (rule-based, untrained)",
        recipe={"builder": "s5geo.export.spectral_baseline", "trained": False},
    )
    write_metadata(path, info)
    return info


if __name__ == "__main__":
    build(sys.argv[1] if len(sys.argv) > 1 else "default.onnx")
