"""`distill`: recipes that cannot run are refused before the run folder is written."""

from __future__ import annotations

from pathlib import Path

import pytest

from s5geo.distill.config import load_distill_config
from s5geo.distill.runner import distill
from s5geo.errors import UserError

RECIPE = Path(__file__).resolve().parents[2] / "configs" / "distill" / "sskd_dubai_cpu.yaml"


class Payload:
    """Pickled into a checkpoint: weights-only loading must refuse it."""


def refuse(overrides: list[str], out: Path, message: str) -> None:
    """``distill`` raises a UserError matching ``message`` and leaves ``out`` empty."""
    cfg = load_distill_config(RECIPE, [f"train.out_dir={out}", *overrides])
    with pytest.raises(UserError, match=message):
        distill(cfg, RECIPE)
    assert not any(out.iterdir())


def test_recipe_problems_are_refused_before_any_output(tmp_path: Path) -> None:
    refuse(["distill.skip=[adapt_fintune]"], tmp_path, "distill.skip: 'adapt_fintune'")
    refuse(["model.name=smp:Unet:resnet81"], tmp_path, "unknown smp encoder 'resnet81'")
    refuse(["model.num_classes=7"], tmp_path, "model.num_classes is 7 but class map 'dubai'")
    refuse(["data.root=/nonexistent/s5geo"], tmp_path, "data root not found: /nonexistent/s5geo")


def test_teacher_holding_objects_is_refused(tiny_overrides: list[str], tmp_path: Path) -> None:
    import torch

    teacher = tmp_path / "teacher.ckpt"
    torch.save({"x": Payload()}, teacher)
    out = tmp_path / "runs"
    out.mkdir()
    refuse([*tiny_overrides, f"distill.teacher={teacher}"], out, "refuses to unpickle")
