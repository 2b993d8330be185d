"""Exported files carry their standardisation in the graph, so tools that feed ``x / 255`` alone
(GeoDeep, which reads the Deepness keys) get the classes s5geo gets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from helpers import write_scene

torch = pytest.importorskip("torch")
geodeep = pytest.importorskip("geodeep")

from s5geo.export.onnx_export import export_model  # noqa: E402
from s5geo.export.standardize import standardize_in_graph  # noqa: E402
from s5geo.infer import load_model  # noqa: E402
from s5geo.infer.predict import predict_scene  # noqa: E402
from s5geo.modelfile import ModelInfo  # noqa: E402

TILE = 64
INFO = ModelInfo(
    class_names={0: "water", 1: "vegetation", 2: "bare"},
    tile_size=TILE,
    bands=(1, 2, 3),
    input_scale=255.0,
    mean=(0.485, 0.456, 0.406),  # ImageNet's, as the Dubai runs use
    std=(0.229, 0.224, 0.225),
)


def colour_net() -> torch.nn.Module:
    """Per-pixel classes from standardised RGB: blue water, green vegetation, else bare; unsure
    of the grey rock quadrant (its most probable class under 0.5: GeoDeep would call that class 0
    under its default threshold, which the files' ``seg_thresh`` of 0 turns off)."""
    net = torch.nn.Conv2d(3, 3, 1)
    with torch.no_grad():
        net.weight.copy_(torch.tensor([[-1.0, -1.0, 2.0], [-1.0, 2.0, -1.0], [1.0, 0.0, 0.0]])
                         .view(3, 3, 1, 1))  # fmt: skip
        net.bias.copy_(torch.tensor([0.0, 0.0, 0.5]))
    return net.eval()


def quadrants(path: Path) -> Path:
    """A 128 px georeferenced RGB scene of four plain quadrants: water, vegetation, sand, rock."""
    rgb = np.zeros((3, 128, 128), np.uint8)
    colours = {(0, 0): (40, 70, 150), (0, 64): (50, 140, 60), (64, 0): (200, 180, 140),
               (64, 64): (120, 110, 100)}  # fmt: skip
    for (y, x), colour in colours.items():
        rgb[:, y : y + 64, x : x + 64] = np.array(colour, np.uint8)[:, None, None]
    return write_scene(path, rgb)


def classes_of(path: Path, model: Path, tmp: Path) -> tuple[np.ndarray, np.ndarray]:
    """s5geo's classes of ``path`` and GeoDeep's, on the same grid."""
    out = tmp / f"{model.stem}.tif"
    predict_scene(path, out, model=load_model(model))
    with rasterio.open(out) as ds:
        ours = ds.read(1)
    theirs = geodeep.run(str(path), str(model), output_type="raw")
    return ours, np.asarray(theirs)[: ours.shape[0], : ours.shape[1]]


def test_geodeep_gets_the_classes_s5geo_gets(tmp_path: Path) -> None:
    scene = quadrants(tmp_path / "scene.tif")
    windows = np.zeros((2, 3, TILE, TILE), np.float32)
    net, info = standardize_in_graph(colour_net(), INFO)
    assert info.mean == (0.0, 0.0, 0.0) and info.std == (1.0, 1.0, 1.0)
    assert info.recipe["standardization"] == {"mean": list(INFO.mean), "std": list(INFO.std)}
    assert info.fill == INFO.mean  # padding and nodata: the average pixel, not black
    inside = export_model(net, tmp_path / "inside.onnx", info, windows + 0.5)
    assert inside.ok
    ours, theirs = classes_of(scene, tmp_path / "inside.onnx", tmp_path)
    assert set(np.unique(ours)) == {0, 1, 2}  # the quadrants are told apart
    rock = np.broadcast_to(np.float32([120, 110, 100])[:, None, None] / 255, (1, 3, TILE, TILE))
    probs = load_model(tmp_path / "inside.onnx").run(np.ascontiguousarray(rock))[0, :, 0, 0]
    assert probs.argmax() == 2 and probs.max() < 0.5  # rock: bare, unsure
    assert (ours == theirs).mean() > 0.999  # GeoDeep's 5 px median filter moves a corner pixel
    # the same network with its standardisation left to the tool: GeoDeep skips it
    export_model(colour_net(), tmp_path / "metadata.onnx", INFO, windows)
    ours_meta, theirs_meta = classes_of(scene, tmp_path / "metadata.onnx", tmp_path)
    assert (ours_meta == ours).all()  # s5geo applies the metadata: same classes either way
    assert (theirs_meta != ours).mean() > 0.2
