"""Test helpers: synthetic georeferenced scenes and per-pixel ONNX models with exact answers."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin

from s5geo.modelfile import ModelInfo, write_metadata

ROOT = Path(__file__).resolve().parents[1]


def data_root() -> Path:
    """$S5GEO_DATA, else ../shared/data next to the project (docs/architecture.md)."""
    return Path(os.environ.get("S5GEO_DATA", ROOT.parent / "shared" / "data"))


def write_scene(
    path: Path,
    data: np.ndarray,
    *,
    crs: str = "EPSG:32633",
    res: float = 1.0,
    origin: tuple[float, float] = (500_000.0, 5_000_000.0),
    nodata: float | None = None,
) -> Path:
    """Write ``data`` [C, H, W] as a georeferenced GeoTIFF."""
    c, h, w = data.shape
    with rasterio.open(
        path, "w", driver="GTiff", width=w, height=h, count=c, dtype=data.dtype,
        crs=crs, transform=from_origin(origin[0], origin[1], res, res), nodata=nodata,
    ) as ds:  # fmt: skip
        ds.write(data)
    return path


# Per-pixel model: class scores are a fixed linear map of the normalised bands.
# Columns are bands; a model over n bands uses the first n columns.
# Rows are classes; a model with k classes uses the first k rows.
PERPIXEL_W = np.array(
    [
        [2.0, -1.0, 0.5, 0.2],
        [-1.0, 2.0, -0.5, 0.1],
        [0.3, 0.2, 1.5, -0.3],
        [0.9, 0.9, -0.2, 0.4],
        [-0.5, 0.4, 0.8, 0.6],
    ],
    np.float32,
)
PERPIXEL_B = np.array([0.1, -0.2, -0.9, -0.4, -0.3], np.float32)
CLASS_NAMES = ("water", "forest", "urban", "crops", "bare")


def perpixel_reference(raw: np.ndarray, scale: float = 255.0, classes: int = 3) -> np.ndarray:
    """Classes the per-pixel model gives for raw bands [C, H, W], computed in numpy."""
    x = raw.astype(np.float64) / scale
    w, b = PERPIXEL_W[:classes, : len(raw)], PERPIXEL_B[:classes]
    scores = np.einsum("kc,chw->khw", w, x) + b[:, None, None]
    return np.argmax(scores, axis=0).astype(np.uint8)


def build_perpixel_model(
    path: Path,
    *,
    tile: int = 64,
    overlap_pct: float = 25.0,
    input_scale: float = 255.0,
    dynamic: bool = False,
    resolution_cm: float = 0.0,
    drop_key: str | None = None,
    bands: tuple[int, ...] = (1, 2, 3),
    classes: int = 3,
) -> Path:
    """A 1x1-conv + softmax ONNX model following the model-file contract."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    hw: list[int | str] = ["H", "W"] if dynamic else [tile, tile]
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["image", "w", "b"], ["scores"], kernel_shape=[1, 1]),
            helper.make_node("Softmax", ["scores"], ["probs"], axis=1),
        ],
        "perpixel",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", len(bands), *hw])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", classes, *hw])],
        initializer=[
            numpy_helper.from_array(PERPIXEL_W[:classes, : len(bands), None, None].copy(), "w"),
            numpy_helper.from_array(PERPIXEL_B[:classes], "b"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    info = ModelInfo(
        class_names=dict(enumerate(CLASS_NAMES[:classes])),
        class_colors={0: "#0000FF", 1: "#00FF00", 2: "#FF0000", 3: "#FFFF00", 4: "#A0522D"},
        tile_size=tile,
        overlap_pct=overlap_pct,
        bands=bands,
        input_scale=input_scale,
        mean=(0.0,) * len(bands),
        std=(1.0,) * len(bands),
        resolution_cm=resolution_cm,
        architecture="perpixel-test",
    )
    write_metadata(path, info)
    if drop_key:
        m = onnx.load(str(path))
        kept = [p for p in m.metadata_props if p.key not in (drop_key, "tile_size")]
        del m.metadata_props[:]
        m.metadata_props.extend(kept)
        onnx.save(m, str(path))
    return path
