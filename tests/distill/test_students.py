"""Students: presets build, forward shapes, parameter budgets, cost counting, ONNX export."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("segmentation_models_pytorch")

from s5geo.config import Config, ModelConfig  # noqa: E402
from s5geo.distill.students import (  # noqa: E402
    STUDENTS,
    build_student,
    classifier_of,
    gflops,
    student_config,
)
from s5geo.errors import UserError  # noqa: E402


@pytest.mark.parametrize("preset", sorted(STUDENTS))
def test_presets_give_logits_at_input_size(preset: str) -> None:
    net = build_student(student_config(preset, num_classes=5)).eval()
    with torch.no_grad():
        out = net(torch.zeros(2, 3, 64, 96))
    assert out.shape == (2, 5, 64, 96)
    params = sum(p.numel() for p in net.parameters())
    assert params < (13e6 if preset == "unet_r18" else 6e6)  # "a few million" except the reference


def test_decoder_features_feed_the_classifier() -> None:
    net = build_student(student_config("fpn_mnv3l", 5)).eval()
    seen: list[torch.Tensor] = []
    classifier_of(net).register_forward_pre_hook(lambda m, i: seen.append(i[0]))
    with torch.no_grad():
        net(torch.zeros(1, 3, 64, 64))
    assert seen and seen[0].shape[-1] == 16  # FPN features at stride 4


def test_gflops_count_grows_with_tile_area() -> None:
    net = build_student(student_config("fpn_mnv3l", 5))
    small, large = gflops(net, 128), gflops(net, 256)
    assert small > 0 and large == pytest.approx(4 * small, rel=0.05)


def test_unknown_names_are_user_errors() -> None:
    with pytest.raises(UserError):
        student_config("nope", 5)
    with pytest.raises(UserError):
        build_student(ModelConfig(name="smp:DeepLab:resnet18", num_classes=5))


def _stage_checkpoint(tmp_path: Path, model: ModelConfig) -> Path:
    """A checkpoint laid out as the distillation stages write it (config + net.* weights)."""
    from s5geo.distill.config import StageConfig
    from s5geo.distill.module import DistillModule

    cfg = Config(model=model)
    cfg.data.class_map = "dubai"
    from dataclasses import asdict

    module = DistillModule(cfg.to_dict(), asdict(StageConfig(pxl=0.1)), {})
    ckpt = {"hyper_parameters": dict(module.hparams), "state_dict": module.state_dict()}
    path = tmp_path / "stage.ckpt"
    torch.save(ckpt, path)
    return path


def test_timm_student_checkpoint_loads_like_every_training_checkpoint(tmp_path: Path) -> None:
    from s5geo.models.loading import load_checkpoint_model

    path = _stage_checkpoint(tmp_path, student_config("upernet_mnv3l", 5))
    net, cfg = load_checkpoint_model(path)
    assert cfg.model.name == "timm:mobilenetv3_large_100"
    assert net(torch.zeros(1, 3, 64, 64)).shape == (1, 5, 64, 64)


def test_smp_student_checkpoint_exports_to_onnx_with_parity(tmp_path: Path) -> None:
    import numpy as np

    from s5geo.export.onnx_export import export_model
    from s5geo.export.pipeline import model_info_for
    from s5geo.models.loading import load_checkpoint_model

    path = _stage_checkpoint(tmp_path, student_config("fpn_mnv3l", 5))
    net, cfg = load_checkpoint_model(path)
    info = model_info_for(cfg, path, 64)
    windows = np.random.default_rng(0).standard_normal((2, 3, 64, 64)).astype(np.float32)
    report = export_model(net, tmp_path / "student.onnx", info, windows)
    assert report.max_abs_diff < 1e-3 and (tmp_path / "student.onnx").stat().st_size > 1e6
