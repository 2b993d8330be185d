"""Class maps turn raw label encodings into class indices with ignored values."""

import numpy as np
import pytest

from s5geo.datasets.classes import CLASS_MAPS, get_class_map
from s5geo.errors import UserError


def test_every_map_is_consistent() -> None:
    for name, cmap in CLASS_MAPS.items():
        assert len(cmap.names) == len(cmap.colors), name
    assert get_class_map("isaid").num_classes == 16
    assert get_class_map("openearthmap").num_classes == 9


def test_loveda_shifts_values_and_ignores_no_data() -> None:
    raw = np.array([[0, 1, 7]], dtype=np.uint8)
    assert get_class_map("loveda").encode(raw).tolist() == [[255, 0, 6]]


def test_isprs_colours_with_clutter_ignored() -> None:
    raw = np.array([[[255, 255, 255], [0, 0, 255], [255, 0, 0]]], dtype=np.uint8)
    assert get_class_map("potsdam").encode(raw).tolist() == [[0, 1, 255]]


def test_unknown_map_named() -> None:
    with pytest.raises(UserError, match="nowhere"):
        get_class_map("nowhere")
