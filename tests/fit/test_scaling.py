"""Band scaling of a fitted model, measured on the scenes: 8-bit, 11-bit in uint16, float."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from helpers import write_scene
from rasterio.enums import ColorInterp

from s5geo.errors import UserError
from s5geo.fit.scaling import STRETCH, scene_scaling


def _scaling(*paths: Path, bands: list[int] | None = None):
    datasets = [rasterio.open(p) for p in paths]
    try:
        return scene_scaling(datasets, bands)
    finally:
        for ds in datasets:
            ds.close()


def _interp(path: Path, interp: list[ColorInterp]) -> Path:
    with rasterio.open(path, "r+") as ds:
        ds.colorinterp = interp
    return path


def test_eight_bit_rgb_is_fed_as_it_is(tmp_path: Path, rng: np.random.Generator) -> None:
    data = rng.integers(20, 230, (3, 64, 64)).astype(np.uint8)
    s = _scaling(write_scene(tmp_path / "rgb.tif", data))
    assert s.bands == (1, 2, 3) and s.input_scale == 255.0
    assert s.rgb_index == (0, 1, 2)
    assert s.rgb_gain == (1.0, 1.0, 1.0) and s.rgb_offset == (0.0, 0.0, 0.0)
    # The filter features see each band standardised: zero mean, unit variance.
    x = data.reshape(3, -1) / 255.0
    z = x * np.array(s.gain)[:, None] + np.array(s.offset)[:, None]
    assert np.allclose(z.mean(1), 0, atol=1e-9) and np.allclose(z.std(1), 1, atol=1e-9)
    assert np.allclose(s.mean, x.mean(1))
    assert s.describe() == {
        "bands": [1, 2, 3],
        "input_scale": 255.0,
        "encoder_bands": [1, 2, 3],
        "encoder_gain": [1.0, 1.0, 1.0],
        "encoder_offset": [0.0, 0.0, 0.0],
    }


def test_eleven_bit_uint16_is_stretched_for_the_encoder(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    data = rng.integers(50, 2047, (4, 96, 96)).astype(np.uint16)
    data[3] //= 2  # a darker fourth band
    s = _scaling(write_scene(tmp_path / "ms.tif", data))
    assert s.bands == (1, 2, 3, 4)
    assert s.input_scale == pytest.approx(np.percentile(data.astype(np.float64), 99.5))
    assert 1900 < s.input_scale <= 2047
    x = data.astype(np.float64) / s.input_scale
    for k, band in enumerate(s.rgb_index):
        stretched = np.clip(x[band] * s.rgb_gain[k] + s.rgb_offset[k], 0, 1)
        lo, hi = np.percentile(x[band], STRETCH)
        assert x[band].min() < lo and hi < x[band].max()
        assert np.mean(stretched == 0) == pytest.approx(0.02, abs=0.005)
        assert np.mean(stretched == 1) == pytest.approx(0.02, abs=0.005)


def test_float_reflectance(tmp_path: Path, rng: np.random.Generator) -> None:
    data = rng.uniform(0.0, 0.4, (3, 64, 64)).astype(np.float32)
    s = _scaling(write_scene(tmp_path / "refl.tif", data))
    assert s.input_scale == pytest.approx(np.percentile(data.astype(np.float64), 99.5), rel=1e-6)
    assert s.rgb_gain[0] > 1.0  # stretched, not fed as 0..0.4


def test_colour_interpretation_picks_red_green_blue(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    data = rng.integers(1, 255, (4, 32, 32)).astype(np.uint8)
    path = write_scene(tmp_path / "bgrn.tif", data)
    _interp(path, [ColorInterp.blue, ColorInterp.green, ColorInterp.red, ColorInterp.undefined])
    s = _scaling(path)
    assert s.bands == (1, 2, 3, 4)
    assert [s.bands[i] for i in s.rgb_index] == [3, 2, 1]


def test_bands_override(tmp_path: Path, rng: np.random.Generator) -> None:
    path = write_scene(tmp_path / "s.tif", rng.integers(1, 255, (4, 32, 32)).astype(np.uint8))
    # RGB + near infrared (GTiff marks a fourth 8-bit band as alpha unless told otherwise).
    _interp(path, [ColorInterp.red, ColorInterp.green, ColorInterp.blue, ColorInterp.undefined])
    s = _scaling(path, bands=[4, 3, 2])
    assert s.rgb_index == (3, 2, 1)
    assert s.describe()["encoder_bands"] == [4, 3, 2]
    for bad in ([5, 3, 2], [1, 2], [1, 2, 3, 4]):
        with pytest.raises(
            UserError, match=r"bands must name three of the scene's bands \[1, 2, 3, 4\]"
        ):
            _scaling(path, bands=bad)


def test_alpha_band_is_a_mask_not_a_band(tmp_path: Path, rng: np.random.Generator) -> None:
    data = rng.integers(100, 200, (4, 64, 64)).astype(np.uint8)
    data[3] = 255
    data[3, :32] = 0  # transparent top half, whose values must not count
    data[:3, :32] = 5
    rgba = [ColorInterp.red, ColorInterp.green, ColorInterp.blue, ColorInterp.alpha]
    path = _interp(write_scene(tmp_path / "rgba.tif", data), rgba)
    s = _scaling(path)
    assert s.bands == (1, 2, 3)
    assert np.allclose(s.mean, data[:3, 32:].reshape(3, -1).mean(1) / 255.0)


def test_nodata_is_left_out_of_the_statistics(tmp_path: Path, rng: np.random.Generator) -> None:
    data = rng.integers(100, 200, (2, 64, 64)).astype(np.uint16)
    data[:, :, :40] = 0
    s = _scaling(write_scene(tmp_path / "nd.tif", data, nodata=0))
    assert s.bands == (1, 2)
    assert [s.bands[i] for i in s.rgb_index] == [1, 2, 2]  # two bands: the second twice
    assert s.input_scale > 150  # from the valid values, not the zeros
    x = data[:, :, 40:].reshape(2, -1) / s.input_scale
    assert np.allclose(s.mean, x.mean(1))


def test_panchromatic_is_grey(tmp_path: Path, rng: np.random.Generator) -> None:
    s = _scaling(
        write_scene(tmp_path / "pan.tif", rng.integers(1, 255, (1, 32, 32)).astype(np.uint8))
    )
    assert s.bands == (1,) and s.rgb_index == (0, 0, 0)


def test_constant_band_does_not_divide_by_zero(tmp_path: Path) -> None:
    data = np.full((3, 32, 32), 77, np.uint8)
    s = _scaling(write_scene(tmp_path / "flat.tif", data))
    assert np.isfinite(s.gain).all() and np.isfinite(s.offset).all()


def test_empty_scene_is_refused(tmp_path: Path) -> None:
    path = write_scene(tmp_path / "empty.tif", np.zeros((3, 32, 32), np.uint8), nodata=0)
    with pytest.raises(UserError, match="has no valid pixels"):
        _scaling(path)


def test_scenes_of_different_sensors_are_refused(tmp_path: Path, rng: np.random.Generator) -> None:
    a = write_scene(tmp_path / "a.tif", rng.integers(1, 255, (3, 32, 32)).astype(np.uint8))
    b = write_scene(tmp_path / "b.tif", rng.integers(1, 2047, (3, 32, 32)).astype(np.uint16))
    c = write_scene(tmp_path / "c.tif", rng.integers(1, 255, (2, 32, 32)).astype(np.uint8))
    for other in (b, c):
        with pytest.raises(UserError, match="differ in bands or data type"):
            _scaling(a, other)
    both = _scaling(
        a, write_scene(tmp_path / "d.tif", rng.integers(1, 255, (3, 16, 16)).astype(np.uint8))
    )
    assert both.bands == (1, 2, 3)
