"""Shared fixtures: real-data location, synthetic scenes, per-pixel models."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from helpers import build_perpixel_model, data_root, write_scene


@pytest.fixture(scope="session")
def real_data() -> Path:
    root = data_root()
    if not (root / "naip").is_dir():
        pytest.skip(f"real data not found at {root} (set S5GEO_DATA)")
    return root


@pytest.fixture
def perpixel_model(tmp_path: Path) -> Path:
    return build_perpixel_model(tmp_path / "perpixel.onnx")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261121)


SceneFactory = Callable[..., Path]


@pytest.fixture
def make_scene(tmp_path: Path, rng: np.random.Generator) -> SceneFactory:
    """Write a random scene: ``make_scene(h, w, bands=3, dtype='uint8', **write_scene kwargs)``."""

    def make(h: int, w: int, bands: int = 3, dtype: str = "uint8", name: str = "scene.tif",
             **kwargs: object) -> Path:  # fmt: skip
        lo, hi = {"uint8": (1, 255), "uint16": (1, 65535)}.get(dtype, (0.01, 1.0))
        data = rng.uniform(lo, hi, size=(bands, h, w)).astype(dtype)
        return write_scene(tmp_path / name, data, **kwargs)  # type: ignore[arg-type]

    return make
