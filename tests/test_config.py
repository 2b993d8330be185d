"""YAML configs: includes, dotted overrides, type checks, unknown keys named."""

from pathlib import Path

import pytest

from s5geo.config import load_config
from s5geo.errors import UserError


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_defaults_include_and_overrides(tmp_path: Path) -> None:
    write(tmp_path / "data.yaml", "data:\n  crop_size: 128\n  class_map: dubai\n")
    cfg_path = write(
        tmp_path / "run.yaml",
        "defaults: [data.yaml]\nmodel:\n  name: vit_tiny\ndata:\n  crop_size: 64\n"
        "train:\n  lr: 5e-5\n",
    )
    cfg = load_config(cfg_path, ["train.steps=7", "model.taps=[1, 2, 3, 4]", "train.tau=1"])
    assert cfg.model.name == "vit_tiny"
    assert cfg.data.crop_size == 64  # file beats include
    assert cfg.data.class_map == "dubai"
    assert cfg.train.steps == 7
    assert cfg.train.lr == pytest.approx(5e-5)
    assert cfg.train.tau == 1.0 and isinstance(cfg.train.tau, float)
    assert cfg.model.taps == [1, 2, 3, 4]


def test_unknown_key_is_named(tmp_path: Path) -> None:
    cfg_path = write(tmp_path / "run.yaml", "train:\n  stepz: 3\n")
    with pytest.raises(UserError, match="train.stepz"):
        load_config(cfg_path)
    with pytest.raises(UserError, match="model.depth"):
        load_config(write(tmp_path / "ok.yaml", "{}"), ["model.depth=3"])


def test_wrong_type_and_missing_file(tmp_path: Path) -> None:
    cfg_path = write(tmp_path / "run.yaml", "train:\n  steps: many\n")
    with pytest.raises(UserError, match="train.steps"):
        load_config(cfg_path)
    with pytest.raises(UserError, match="not found"):
        load_config(tmp_path / "absent.yaml")
    with pytest.raises(UserError, match="key=value"):
        load_config(write(tmp_path / "ok.yaml", "{}"), ["train.steps"])
