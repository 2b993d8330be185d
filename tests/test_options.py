"""Prediction options: checked when made, errors that name the parameter and its range, and
wording that each front end can make its own."""

from __future__ import annotations

import pickle
import subprocess
import sys

import pytest

from s5geo.errors import ParameterError, UserError
from s5geo.options import PredictOptions


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"batch_size": 0}, "batch_size must be at least 1, not 0"),
        ({"tile_size": 8}, "tile_size must be at least 16 px, not 8"),
        ({"overlap": -1}, "overlap must be at least 0 px, not -1"),
        ({"tile_size": 512, "overlap": 300},
         "overlap must lie in 0..256 px for 512-px tiles, not 300"),
        ({"min_area_m2": -1.0}, "min_area_m2 must be at least 0 m², not -1"),
        ({"simplify_m": float("nan")}, "simplify_m must be at least 0 m, not nan"),
    ],
)  # fmt: skip
def test_values_outside_their_range_name_the_parameter_and_the_range(values, message) -> None:
    with pytest.raises(ParameterError) as caught:
        PredictOptions(**values)
    assert str(caught.value) == message
    assert isinstance(caught.value, UserError)  # the CLI's exit status 2, QGIS's readable error


def test_every_numeric_option_has_its_range_as_data() -> None:
    defaults = PredictOptions()
    for name, limits in PredictOptions.LIMITS.items():
        default = getattr(defaults, name)
        assert default is None or limits.low <= default  # the defaults are valid
        with pytest.raises(ParameterError, match=f"^{name} must"):
            PredictOptions(**{name: limits.low - 1})
        PredictOptions(**{name: limits.low})  # the bound itself is valid


def test_a_front_end_words_the_error_with_its_own_names() -> None:
    with pytest.raises(ParameterError) as caught:
        PredictOptions(tile_size=64, overlap=40)
    error = caught.value
    assert error.parameters == ("overlap",)
    assert error.worded({"overlap": "--overlap"}) == (
        "--overlap must lie in 0..32 px for 64-px tiles, not 40"
    )
    assert error.worded({"overlap": "Tile overlap"}).startswith("Tile overlap must lie in 0..32")
    # Values are never read as fields, and an error survives a trip to another process (Dask).
    braces = ParameterError("{quicklook} {path} is not a PNG", path="/data/{x}.tif")
    assert braces.worded({"quicklook": "--quicklook"}) == "--quicklook /data/{x}.tif is not a PNG"
    again = pickle.loads(pickle.dumps(braces))
    assert str(again) == str(braces) and again.parameters == ("quicklook",)


def test_options_are_frozen_and_hashable() -> None:
    options = PredictOptions(providers=["cuda", "cpu"])  # type: ignore[arg-type]
    assert options.providers == ("cuda", "cpu")
    assert hash(options) == hash(PredictOptions(providers=("cuda", "cpu")))
    with pytest.raises(AttributeError):
        options.batch_size = 8  # type: ignore[misc]


def test_importing_the_options_loads_no_inference_stack() -> None:
    """The QGIS plugin reads the ranges when it lists its fields, before s5geo is needed."""
    code = (
        "import sys, s5geo.options; "
        "print(sorted(m for m in ('numpy', 'rasterio', 'onnxruntime', 's5geo.infer') "
        "if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
