"""Padding and nodata are fed to the network as its average pixel (``s5geo.fill``), so a model
that looks at neighbours treats them as the data's mean, whether it standardises in its graph or
through the metadata."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import rasterio
from helpers import write_scene
from onnx import TensorProto, helper, numpy_helper

from s5geo.infer import predict_scene
from s5geo.modelfile import ModelInfo, write_metadata

TILE = 64
MEAN = (0.4, 0.6, 0.2)  # x 255: 102, 153, 51, whole numbers


def neighbourhood_model(path: Path, info: ModelInfo) -> Path:
    """Class k where band k is brightest over the 5x5 neighbourhood: classes that see
    neighbours (an average pool, a 1x1 conv and a softmax)."""
    weights = (20 * np.eye(3, dtype=np.float32))[:, :, None, None]
    graph = helper.make_graph(
        [
            helper.make_node(
                "AveragePool",
                ["image"],
                ["smooth"],
                kernel_shape=[5, 5],
                pads=[2, 2, 2, 2],
                count_include_pad=1,
            ),
            helper.make_node("Conv", ["smooth", "w"], ["scores"], kernel_shape=[1, 1]),
            helper.make_node("Softmax", ["scores"], ["probs"], axis=1),
        ],
        "neighbourhood",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, TILE, TILE])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", 3, TILE, TILE])],
        initializer=[numpy_helper.from_array(weights, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    write_metadata(path, info)
    return path


def info(**fields: object) -> ModelInfo:
    base = {"class_names": {0: "a", 1: "b", 2: "c"}, "tile_size": TILE, "bands": (1, 2, 3),
            "input_scale": 255.0, "overlap_pct": 25.0}  # fmt: skip
    return ModelInfo(**{**base, **fields})  # type: ignore[arg-type]


def classes(path: Path) -> np.ndarray:
    with rasterio.open(path) as ds:
        return ds.read(1)


def test_nodata_and_padding_are_fed_as_the_average_pixel(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    data = rng.integers(1, 255, size=(3, 150, 100), dtype=np.uint8)
    data[:, 40:80, 30:70] = 0  # nodata inside the scene (100 px wide: the right tiles are padded)
    average = data.copy()
    average[:, 40:80, 30:70] = np.array([102, 153, 51], np.uint8)[:, None, None]
    with_nodata = write_scene(tmp_path / "nodata.tif", data, nodata=0)
    filled = write_scene(tmp_path / "filled.tif", average)
    valid = (data != 0).any(axis=0)
    in_graph = info(mean=(0.0,) * 3, std=(1.0,) * 3, fill=MEAN)  # as s5geo export writes
    in_metadata = info(mean=MEAN, std=(1.0,) * 3)  # the standardisation left to the reader
    for name, meta in (("graph", in_graph), ("metadata", in_metadata)):
        model = neighbourhood_model(tmp_path / f"{name}.onnx", meta)
        predict_scene(with_nodata, tmp_path / f"{name}_a.tif", model=model)
        predict_scene(filled, tmp_path / f"{name}_b.tif", model=model)
        a, b = classes(tmp_path / f"{name}_a.tif"), classes(tmp_path / f"{name}_b.tif")
        assert (a[~valid] == 255).all()
        np.testing.assert_array_equal(a[valid], b[valid])
