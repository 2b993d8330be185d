"""A scene far less familiar to its model than its reference imagery gets one warning."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from s5geo.infer import load_model, predict_scene
from s5geo.infer.familiarity import MARGIN, ConfidenceMeter, familiarity_warning
from s5geo.modelfile import write_metadata


def test_the_meter_averages_the_top_probability_of_valid_pixels() -> None:
    probs = np.zeros((2, 8, 8), np.float32)
    probs[0] = 0.9
    probs[1] = 0.1
    probs[:, :, 4:] = 0.5  # the right half: unsure
    valid = np.ones((8, 8), bool)
    meter = ConfidenceMeter()
    meter.add(probs, valid)
    assert meter.mean == pytest.approx(0.7)  # every 4th column: one at 0.9, one at 0.5
    valid[:, 4:] = False
    only_sure = ConfidenceMeter()
    only_sure.add(probs, valid)
    assert only_sure.mean == pytest.approx(0.9)
    assert ConfidenceMeter().mean is None


def test_the_warning_needs_a_reference_and_a_clear_drop() -> None:
    assert familiarity_warning(0.5, None, "s.tif") is None
    assert familiarity_warning(None, 0.8, "s.tif") is None
    assert familiarity_warning(0.8 - MARGIN + 0.01, 0.8, "s.tif") is None
    warning = familiarity_warning(0.6, 0.8, "s.tif")
    assert warning is not None and "s.tif" in warning and "s5geo fit" in warning


def test_predict_warns_only_when_the_scene_is_far_below_the_reference(
    tmp_path: Path, make_scene, perpixel_model: Path
) -> None:
    scene = make_scene(96, 96)
    plain = predict_scene(scene, tmp_path / "a.tif", model=perpixel_model)
    assert plain.mean_confidence is not None and 0.0 < plain.mean_confidence < 1.0
    assert not any("s5geo fit" in w for w in plain.warnings)  # no reference: nothing checked
    info = load_model(perpixel_model).info
    write_metadata(perpixel_model, replace(info, reference_confidence=plain.mean_confidence))
    same = predict_scene(scene, tmp_path / "b.tif", model=perpixel_model)
    assert same.mean_confidence == pytest.approx(plain.mean_confidence)
    assert not any("s5geo fit" in w for w in same.warnings)
    write_metadata(perpixel_model, replace(info, reference_confidence=0.999))
    far = predict_scene(scene, tmp_path / "c.tif", model=perpixel_model)
    assert sum("s5geo fit" in w for w in far.warnings) == 1
