"""The model-file contract's metadata, and that s5geo files meet what Deepness reads from them.

Deepness (the QGIS plugin, PUTvision/qgis-plugin-deepness) is not installable here (not on PyPI;
QGIS's plugin repository is out of reach), so ``deepness_reading`` applies the rules of its
``ModelBase`` getters and ``Segmentor.check_loaded_model_outputs`` (src/deepness/processing/
models/) to a file: every key it reads is JSON, class ids run 0..K-1, one input [N, C, T, T] with
a fixed T, one square 4-D output, and a resolution it can divide by (its map processor computes
layer units per pixel from it).
"""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import onnxruntime as ort
import pytest
from helpers import build_perpixel_model

from s5geo.errors import UserError
from s5geo.infer.runtime import default_model_path
from s5geo.modelfile import ModelInfo, info_from_metadata

INFO = ModelInfo(
    class_names={0: "water", 1: "land"},
    tile_size=256,
    bands=(1, 2, 3),
    input_scale=255.0,
    mean=(0.5, 0.5, 0.5),
    std=(0.25, 0.25, 0.25),
    overlap_pct=12.5,
)


def deepness_reading(path: Path) -> dict[str, object]:
    """What Deepness's Segmentor takes from ``path``; AssertionError where it would fail."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    (image,) = session.get_inputs()
    (output,) = session.get_outputs()
    assert len(image.shape) == 4 and all(isinstance(d, int) for d in image.shape[1:]), image.shape
    assert len(output.shape) == 4 and output.shape[2] == output.shape[3], output.shape
    names = json.loads(meta["class_names"])
    assert sorted(int(k) for k in names) == list(range(len(names)))
    read: dict[str, object] = {
        "model_type": str(json.loads(meta["model_type"])).capitalize(),
        "classes": [names[k] for k in sorted(names, key=int)],
        "tile_size": int(json.loads(meta["tile_size"])),
        "tiles_overlap": int(json.loads(meta["tiles_overlap"])),
        "seg_thresh": float(json.loads(meta["seg_thresh"])),  # its probability threshold
        "channels": image.shape[1],
    }
    if "resolution" in meta:  # optional there; when present it is a divisor
        read["resolution"] = float(json.loads(meta["resolution"]))
        assert read["resolution"] > 0, "Deepness divides by the resolution"
    return read


def test_an_unknown_resolution_is_left_out_and_read_back_as_unknown() -> None:
    meta = INFO.to_metadata()
    assert "resolution" not in meta
    assert info_from_metadata(meta).resolution_cm == 0.0
    known = ModelInfo(**{**INFO.__dict__, "resolution_cm": 30.0}).to_metadata()
    assert json.loads(known["resolution"]) == 30.0
    assert info_from_metadata(known).resolution_cm == 30.0
    # files written before the key became optional say 0.0: still unknown
    assert info_from_metadata({**meta, "resolution": "0.0"}).resolution_cm == 0.0


def test_a_missing_required_key_is_refused_by_name() -> None:
    meta = INFO.to_metadata()
    del meta["standardization_std"]
    with pytest.raises(UserError, match="lacks the required metadata key 'standardization_std'"):
        info_from_metadata(meta, source="model m.onnx")


@pytest.mark.parametrize("resolution_cm", [0.0, 60.0])
def test_deepness_reads_a_model_file(tmp_path: Path, resolution_cm: float) -> None:
    path = build_perpixel_model(tmp_path / "m.onnx", tile=64, resolution_cm=resolution_cm)
    read = deepness_reading(path)
    assert read["model_type"] == "Segmentor" and read["tile_size"] == 64
    assert read["classes"] == ["water", "forest", "urban"] and read["channels"] == 3
    assert read["seg_thresh"] == 0.0
    assert read.get("resolution") == (resolution_cm or None)


def test_deepness_reads_the_bundled_model() -> None:
    read = deepness_reading(default_model_path())
    assert read == {
        "model_type": "Segmentor",
        "classes": ["building", "land", "road", "vegetation", "water"],
        "tile_size": 512,
        "tiles_overlap": 12,  # Deepness's overlap box takes whole percents
        "seg_thresh": 0.0,  # no pixel loses its class to Deepness's threshold
        "channels": 3,
    }
    props = {p.key: p.value for p in onnx.load(str(default_model_path())).metadata_props}
    # standardisation in the graph: a reader divides by 255 only; s5geo pads with the mean
    assert json.loads(props["standardization_mean"]) == [0.0] * 3
    assert json.loads(props["standardization_std"]) == [1.0] * 3
    assert json.loads(props["s5geo.fill"]) == [0.485, 0.456, 0.406]
    recipe = json.loads(props["s5geo.recipe"])
    assert recipe["standardization"]["mean"] == [0.485, 0.456, 0.406]
