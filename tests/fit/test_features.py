"""The feature graph: ONNX filters against scipy.ndimage, feature names and count, the encoder."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from scipy import ndimage

from s5geo.fit.features import (
    ENCODER_CHANNELS,
    SIGMAS,
    FeatureSpec,
    context_px,
    features_model,
    gaussian_kernels,
)
from s5geo.fit.samples import MARGIN
from s5geo.fit.scaling import BandScaling
from s5geo.infer import default_model_path

TILE = 96


def _scaling(
    bands: tuple[int, ...], gain: tuple[float, ...], offset: tuple[float, ...]
) -> BandScaling:
    n = len(bands)
    return BandScaling(bands=bands, input_scale=255.0, gain=gain, offset=offset,
                       rgb_index=(0, min(1, n - 1), min(2, n - 1)), rgb_gain=(1.0, 1.0, 1.0),
                       rgb_offset=(0.0, 0.0, 0.0), mean=(0.5,) * n)  # fmt: skip


def _run(model: onnx.ModelProto, image: np.ndarray) -> np.ndarray:
    onnx.checker.check_model(model)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"image": image.astype(np.float32)})[0]


@pytest.fixture(scope="module")
def filters() -> tuple[FeatureSpec, np.ndarray, np.ndarray]:
    """Filter features of a smooth random image of two bands (the scene's bands 2 and 4)."""
    rng = np.random.default_rng(7)
    image = ndimage.gaussian_filter(rng.uniform(0, 1, (1, 2, TILE, TILE)), (0, 0, 1.5, 1.5))
    spec = FeatureSpec(bands=2, scaling=_scaling((2, 4), (4.0, 2.0), (-2.0, -1.0)), encoder=False)
    out = _run(features_model(spec, TILE), image)
    z = image[0] * np.array([4.0, 2.0])[:, None, None] + np.array([-2.0, -1.0])[:, None, None]
    return spec, out[0].astype(np.float64), z


def test_feature_count_and_names(filters: tuple[FeatureSpec, np.ndarray, np.ndarray]) -> None:
    spec, out, _ = filters
    assert spec.count == 3 * 2 * len(SIGMAS) == out.shape[0]
    assert out.shape == (spec.count, TILE, TILE)
    names = spec.names()
    assert len(names) == len(set(names)) == spec.count
    assert names[:6] == ["gauss0.7_b2", "gauss0.7_b4", "log0.7_b2", "log0.7_b4",
                         "gradmag0.7_b2", "gradmag0.7_b4"]  # fmt: skip
    assert names[-1] == "gradmag10_b4"
    with_encoder = FeatureSpec(bands=4, scaling=_scaling((1, 2, 3, 4), (1.0,) * 4, (0.0,) * 4))
    assert with_encoder.count == 3 * 4 * len(SIGMAS) + ENCODER_CHANNELS == 72 + 96
    assert with_encoder.names()[-ENCODER_CHANNELS:] == [f"decoder{k}" for k in range(32)] + [
        f"layer1_{k}" for k in range(64)
    ]


def test_context_fits_the_sample_margin() -> None:
    spec = FeatureSpec(bands=3, scaling=_scaling((1, 2, 3), (1.0,) * 3, (0.0,) * 3))
    radius = gaussian_kernels(max(SIGMAS))[3]
    assert context_px(spec) == radius + 1 == 41  # the largest Gaussian, plus the 3x3 stencil
    assert context_px(spec) <= MARGIN


@pytest.mark.parametrize("sigma", SIGMAS)
def test_gaussian_matches_scipy_inside_the_tile(
    filters: tuple[FeatureSpec, np.ndarray, np.ndarray], sigma: float
) -> None:
    spec, out, z = filters
    names = spec.names()
    r = gaussian_kernels(sigma)[3]
    inner = np.s_[r : TILE - r, r : TILE - r]  # where no padding is involved
    for c, band in enumerate(spec.scaling.bands):
        want = ndimage.gaussian_filter(z[c], sigma, truncate=4.0, mode="nearest")
        got = out[names.index(f"gauss{sigma:g}_b{band}")]
        assert np.abs(got[inner] - want[inner]).max() < 1e-4
        # The borders are reflected without repeating the edge pixel: scipy's "mirror".
        assert (
            np.abs(got - ndimage.gaussian_filter(z[c], sigma, truncate=4.0, mode="mirror")).max()
            < 1e-4
        )


@pytest.mark.parametrize("sigma", SIGMAS)
def test_derivatives_of_the_smoothed_bands(
    filters: tuple[FeatureSpec, np.ndarray, np.ndarray], sigma: float
) -> None:
    spec, out, z = filters
    names = spec.names()
    inner = np.s_[1:-1, 1:-1]
    for c, band in enumerate(spec.scaling.bands):
        smooth = ndimage.gaussian_filter(z[c], sigma, truncate=4.0, mode="mirror")
        dy, dx = np.gradient(smooth)  # central differences inside
        log = out[names.index(f"log{sigma:g}_b{band}")]
        grad = out[names.index(f"gradmag{sigma:g}_b{band}")]
        assert np.abs(log - ndimage.laplace(smooth, mode="mirror")).max() < 1e-4
        assert np.abs(grad[inner] - np.hypot(dx, dy)[inner]).max() < 1e-4


@pytest.mark.parametrize("sigma", [3.5, 5.0, 10.0])
def test_derivatives_approach_scipys_derivative_of_gaussian(
    filters: tuple[FeatureSpec, np.ndarray, np.ndarray], sigma: float
) -> None:
    spec, out, z = filters
    names = spec.names()
    r = gaussian_kernels(sigma)[3] + 1
    inner = np.s_[r : TILE - r, r : TILE - r]
    want_log = ndimage.gaussian_laplace(z[0], sigma, truncate=4.0)[inner]
    want_grad = ndimage.gaussian_gradient_magnitude(z[0], sigma, truncate=4.0)[inner]
    got_log = out[names.index(f"log{sigma:g}_b2")][inner]
    got_grad = out[names.index(f"gradmag{sigma:g}_b2")][inner]
    assert np.abs(got_log - want_log).max() < 0.05 * np.abs(want_log).max()
    assert np.abs(got_grad - want_grad).max() < 0.05 * want_grad.max()


def test_encoder_features_read_the_three_encoder_bands() -> None:
    tile = 512  # the bundled network's fixed tile
    encoder = onnx.load(str(default_model_path()))
    scaling = BandScaling(bands=(1, 2, 3, 4), input_scale=255.0, gain=(1.0,) * 4,
                          offset=(0.0,) * 4, rgb_index=(2, 1, 0), rgb_gain=(1.0, 1.0, 1.0),
                          rgb_offset=(0.0, 0.0, 0.0), mean=(0.5,) * 4)  # fmt: skip
    spec = FeatureSpec(bands=4, scaling=scaling, sigmas=(1.0,))
    rng = np.random.default_rng(3)
    a = ndimage.zoom(rng.uniform(0, 1, (4, 64, 64)), (1, 8, 8), order=1)
    b = a.copy()
    b[3] = 1 - b[3]  # another fourth band: not an encoder band
    out = _run(features_model(spec, tile, encoder), np.stack([a, b]))
    assert out.shape == (2, spec.count, tile, tile) and spec.count == 12 + ENCODER_CHANNELS
    assert np.isfinite(out).all()
    enc = slice(12, None)
    assert np.array_equal(out[0, enc], out[1, enc])
    assert out[0, enc].std() > 0  # the channels carry something
    names = spec.names()
    assert not np.allclose(out[0, names.index("gauss1_b4")], out[1, names.index("gauss1_b4")])
