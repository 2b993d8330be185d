"""ONNX evaluation on the real Dubai split through the tiled predictor (deployment install)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import build_perpixel_model, perpixel_reference
from PIL import Image

from s5geo.config import DataConfig
from s5geo.errors import UserError
from s5geo.evaluate import evaluate_onnx


def _folder_dataset(root: Path, rng: np.random.Generator) -> DataConfig:
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for stem in ("a", "b"):
        image = rng.integers(0, 255, size=(70, 90, 3), dtype=np.uint8)
        Image.fromarray(image).save(root / "images" / f"{stem}.png")
        mask = perpixel_reference(np.moveaxis(image, -1, 0), classes=5)
        mask[:5] = 255  # an ignored strip
        Image.fromarray(mask).save(root / "masks" / f"{stem}.png")
    (root / "splits.json").write_text(json.dumps({"test": ["a", "b"]}))
    return DataConfig(root=str(root), class_map="dubai")


def test_the_model_that_made_the_masks_scores_100(tmp_path, rng) -> None:
    data = _folder_dataset(tmp_path / "data", rng)
    model = build_perpixel_model(tmp_path / "m.onnx", tile=32, classes=5)
    result = evaluate_onnx(model, data, "test", out_dir=tmp_path / "eval")
    assert result["miou"] == pytest.approx(100.0, abs=0.05)  # float32 near-ties at most
    assert result["images"] == 2 and result["pixels"] == 2 * 65 * 90  # ignored strip dropped
    assert json.loads((tmp_path / "eval" / "test.json").read_text())["miou"] == result["miou"]
    assert (tmp_path / "eval" / "confusion_test.png").exists()
    three = build_perpixel_model(tmp_path / "three.onnx", tile=32)
    with pytest.raises(UserError, match="3 classes"):
        evaluate_onnx(three, data, "test")  # Dubai has 5 classes


@pytest.mark.realdata
def test_default_model_refuses_rgb_dubai(real_data: Path) -> None:
    data = DataConfig(root=str(real_data / "dubai"), class_map="dubai")
    with pytest.raises(UserError):
        evaluate_onnx(None, data, "test")
