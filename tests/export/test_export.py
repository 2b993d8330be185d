"""torch -> ONNX export under the model-file contract; FP16 and INT8 versions."""

from __future__ import annotations

import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest

torch = pytest.importorskip("torch")

from s5geo.errors import UserError  # noqa: E402
from s5geo.export.compare import compare_variant  # noqa: E402
from s5geo.export.onnx_export import export_model  # noqa: E402
from s5geo.export.quantize import to_fp16, to_int8  # noqa: E402
from s5geo.infer import load_model  # noqa: E402
from s5geo.modelfile import REQUIRED_KEYS, ModelInfo  # noqa: E402

TILE = 64


def small_net() -> torch.nn.Module:
    torch.manual_seed(0)
    layers: list[torch.nn.Module] = []
    cin = 3
    for cout in (16, 16):
        layers += [torch.nn.Conv2d(cin, cout, 3, padding=1, bias=False),
                   torch.nn.BatchNorm2d(cout), torch.nn.ReLU()]  # fmt: skip
        cin = cout
    layers.append(torch.nn.Conv2d(cin, 4, 1))
    net = torch.nn.Sequential(*layers)
    with torch.no_grad():  # non-trivial BatchNorm statistics, as after training
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    return net.eval()


INFO = ModelInfo(
    class_names={0: "building", 1: "land", 2: "road", 3: "water"},
    class_colors={0: "#3C1098", 1: "#8429F6", 2: "#6EC1E4", 3: "#E2A929"},
    tile_size=TILE,
    bands=(1, 2, 3),
    input_scale=255.0,
    mean=(0.485, 0.456, 0.406),
    std=(0.229, 0.224, 0.225),
    architecture="small-test-cnn",
)


@pytest.fixture(scope="module")
def windows() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(6, 3, TILE, TILE)).astype(np.float32)


@pytest.fixture(scope="module")
def exported(tmp_path_factory, windows) -> tuple[Path, float]:
    out = tmp_path_factory.mktemp("export") / "model.onnx"
    report = export_model(small_net(), out, INFO, windows)
    return out, report.max_abs_diff


def test_export_follows_the_model_file_contract(exported, windows) -> None:
    path, diff = exported
    assert 0 < diff < 1e-3
    proto = onnx.load(str(path))
    keys = {p.key for p in proto.metadata_props}
    assert set(REQUIRED_KEYS) <= keys and "tile_size" in keys and "s5geo.class_colors" in keys
    assert [o.name for o in proto.graph.output] == ["probs"]
    model = load_model(path)
    assert model.fixed_size == TILE and model.info.class_names == INFO.class_names
    probs = model.run(windows[:3])
    assert probs.shape == (3, 4, TILE, TILE)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    with torch.no_grad():
        ref = torch.softmax(small_net()(torch.from_numpy(windows[:3])), dim=1).numpy()
    np.testing.assert_allclose(probs, ref, atol=1e-5)


def test_probabilities_of_very_large_logits_are_finite(tmp_path, windows) -> None:
    # Logits in the thousands (a confident or badly scaled network) must not overflow exp().
    net = small_net()
    with torch.no_grad():
        net[-1].weight.mul_(1e4)
    out = tmp_path / "confident.onnx"
    export_model(net, out, INFO, windows[:2], tolerance=1.0)
    probs = load_model(out).run(windows[:2])
    assert np.isfinite(probs).all()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    with torch.no_grad():
        ref = torch.softmax(net(torch.from_numpy(windows[:2])), dim=1).numpy()
    assert (probs.argmax(axis=1) == ref.argmax(axis=1)).mean() > 0.99


def test_parity_above_tolerance_is_refused_and_writes_nothing(tmp_path, exported, windows) -> None:
    _, diff = exported
    out = tmp_path / "refused.onnx"
    with pytest.raises(UserError, match="differs from PyTorch"):
        export_model(small_net(), out, INFO, windows, tolerance=diff / 10)
    assert list(tmp_path.iterdir()) == []


def test_dynamic_size_export_runs_other_tile_sizes(tmp_path, windows) -> None:
    out = tmp_path / "dyn.onnx"
    export_model(small_net(), out, INFO, windows[:2], dynamic_size=True)
    model = load_model(out)
    assert model.fixed_size is None
    assert model.run(np.zeros((1, 3, 96, 80), np.float32)).shape == (1, 4, 96, 80)


class PooledNet(torch.nn.Module):
    """Convolution plus a pyramid-pooling branch: the pattern of UperNet's head."""

    def __init__(self, pool: torch.nn.Module) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.pool = pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        pooled = torch.nn.functional.interpolate(self.pool(y), size=y.shape[-2:], mode="bilinear")
        return y + pooled


def test_dynamic_size_export_of_pyramid_pooling_is_right_at_other_sizes(tmp_path) -> None:
    from s5geo.models.upernet import AdaptiveAvgPool

    rng = np.random.default_rng(1)
    windows = rng.normal(size=(2, 3, 128, 128)).astype(np.float32)
    info = replace(INFO, tile_size=128)
    net = PooledNet(AdaptiveAvgPool(3)).eval()
    out = tmp_path / "dyn.onnx"
    assert export_model(net, out, info, windows, dynamic_size=True).ok
    x = rng.normal(size=(1, 3, 160, 96)).astype(np.float32)
    with torch.no_grad():
        ref = torch.softmax(net(torch.from_numpy(x)), dim=1).numpy()
    np.testing.assert_allclose(load_model(out).run(x), ref, atol=1e-5)


def test_dynamic_size_export_wrong_at_other_sizes_is_refused(tmp_path, windows) -> None:
    # torch's own adaptive pooling exports with indices of the example size (issue fixed by
    # s5geo.models.upernet.AdaptiveAvgPool): the check at a second size must catch it.
    net = PooledNet(torch.nn.AdaptiveAvgPool2d(3)).eval()
    with pytest.raises(UserError, match="on 32x32 px windows.*without --dynamic-size"):
        export_model(net, tmp_path / "dyn.onnx", INFO, windows, dynamic_size=True)
    assert list(tmp_path.iterdir()) == []


def test_fp16_and_int8_keep_metadata_and_agree(tmp_path, exported, windows) -> None:
    path, _ = exported
    fp16, int8 = tmp_path / "m.fp16.onnx", tmp_path / "m.int8.onnx"
    to_fp16(path, fp16)
    to_int8(path, int8, windows)
    ref = load_model(path).run(windows).argmax(axis=1)
    for variant, min_agreement in ((fp16, 0.99), (int8, 0.9)):
        model = load_model(variant)
        assert model.info.class_names == INFO.class_names
        assert model.info.recipe["precision"] in ("fp16", "int8")
        probs = model.run(windows)
        agree = (probs.argmax(axis=1) == ref).mean()
        assert agree >= min_agreement, (variant.name, agree)
        # The softmax is not quantized: probabilities stay fine-grained and sum to 1.
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=2e-3 if variant == fp16 else 1e-5)
        if variant == int8:
            assert len(np.unique(probs)) > 1000


def test_int8_of_a_groupnorm_net_prints_no_axis_warnings(tmp_path, windows, caplog) -> None:
    # FPN decoders normalise with GroupNorm, exported as InstanceNormalization with a 1-D scale;
    # ONNX Runtime's quantizer warned once per such node that the scale has no channel axis.
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.GroupNorm(4, 8), torch.nn.ReLU(),
        torch.nn.Conv2d(8, 4, 1),
    ).eval()  # fmt: skip
    path, int8 = tmp_path / "gn.onnx", tmp_path / "gn.int8.onnx"
    export_model(net, path, INFO, windows)
    assert any(n.op_type == "InstanceNormalization" for n in onnx.load(str(path)).graph.node)
    with caplog.at_level("WARNING"):
        to_int8(path, int8, windows)
    assert not [r for r in caplog.records if "out-of-range" in r.getMessage()]
    agree = load_model(int8).run(windows).argmax(1) == load_model(path).run(windows).argmax(1)
    assert agree.mean() >= 0.9


def test_versions_are_compared_with_fp32_on_agreement_and_speed(tmp_path, exported, windows):
    path, _ = exported
    same = compare_variant(path, path, windows)
    assert same.agreement == 1.0 and same.windows == len(windows) and same.provider == "CPU"
    assert same.reference_ms > 0 and same.variant_ms > 0
    int8 = tmp_path / "m.int8.onnx"
    to_int8(path, int8, windows[:3])
    held_out = np.random.default_rng(1).normal(size=(4, 3, TILE, TILE)).astype(np.float32)
    report = compare_variant(path, int8, held_out)
    ref = load_model(path).run(held_out).argmax(axis=1)
    same = load_model(int8).run(held_out).argmax(axis=1) == ref
    assert report.agreement == pytest.approx(same.mean()) and 0.9 <= report.agreement < 1.0
    line = report.describe("noise windows")
    assert f"{100 * same.mean():.2f} % of pixels of 4 noise windows" in line
    assert f"network {report.speedup:.2f}x as fast on CPU" in line
    # pixels outside the mask (padding past an image's edge) are not counted
    assert compare_variant(path, int8, held_out, same).agreement == 1.0


def test_fp16_of_weights_below_its_range_prints_no_warnings(tmp_path, windows) -> None:
    net = small_net()
    with torch.no_grad():
        net[0].weight[0, 0, 0, 0] = -5e-10  # below float16's smallest value: clamped to -1e-07
    path = tmp_path / "m.onnx"
    export_model(net, path, INFO, windows)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        to_fp16(path, tmp_path / "m.fp16.onnx")
    assert not [w for w in caught if "truncated" in str(w.message)]
