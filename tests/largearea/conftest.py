"""Fixtures of the large-area tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from largearea.la_helpers import build_brightness_model


@pytest.fixture
def brightness_model(tmp_path: Path) -> Path:
    """Classes by each pixel's own brightness: a scene's parts map as the whole scene does."""
    return build_brightness_model(tmp_path / "brightness.onnx")


@pytest.fixture
def context_model(tmp_path: Path) -> Path:
    """Classes by a 9 x 9 neighbourhood's brightness: the map depends on the window layout."""
    return build_brightness_model(tmp_path / "context.onnx", kernel=9)
