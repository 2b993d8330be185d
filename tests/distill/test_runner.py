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


def _rows(**val: float) -> list[dict[str, object]]:
    return [{"stage": s, "val_miou": v, "checkpoint": f"{s}/best.ckpt"} for s, v in val.items()]


SSKD_STAGES = ("adapt_finetune", "adapt_selftrain", "transfer", "refine")


def test_student_is_the_better_of_transfer_and_refine_on_val() -> None:
    from s5geo.distill.runner import choose_student

    cfg = load_distill_config(RECIPE, ["distill.skip=[adapt]"])
    collapsed = choose_student(cfg, SSKD_STAGES, _rows(transfer=42.8, refine=37.8))
    assert collapsed is not None and collapsed["stage"] == "transfer"
    assert collapsed["checkpoint"] == "transfer/best.ckpt"
    assert collapsed["other_val_miou"] == {"refine": 37.8}
    improved = choose_student(cfg, SSKD_STAGES, _rows(transfer=44.7, refine=45.1))
    assert improved is not None and improved["stage"] == "refine"
    tie = choose_student(cfg, SSKD_STAGES, _rows(transfer=44.7, refine=44.7))
    assert tie is not None and tie["stage"] == "refine"
    # not finished yet: no student
    assert choose_student(cfg, SSKD_STAGES, _rows(transfer=44.7)) is None


def test_student_rules_of_refine_only_and_other_methods() -> None:
    from s5geo.distill.runner import choose_student

    paper = load_distill_config(RECIPE, ["distill.skip=[adapt]", "distill.sskd.keep=refine"])
    chosen = choose_student(paper, SSKD_STAGES, _rows(transfer=42.8, refine=37.8))
    assert chosen is not None and chosen["stage"] == "refine" and chosen["rule"] == "refine"
    no_refine = load_distill_config(RECIPE, ["distill.skip=[refine]"])
    stages = _rows(adapt_finetune=50.0, adapt_selftrain=51.0, transfer=40.0)
    chosen = choose_student(no_refine, SSKD_STAGES, stages)
    assert chosen is not None and chosen["stage"] == "transfer"  # never the teacher's stages
    mckd = load_distill_config(RECIPE, ["distill.method=mckd", "distill.mckd.cross_stages=1"])
    names = ("cross1_A", "cross1_B", "final")
    chosen = choose_student(mckd, names, _rows(cross1_A=45.0, cross1_B=44.0, final=30.0))
    assert chosen is not None and chosen["stage"] == "final" and chosen["rule"] == "last"
    with pytest.raises(UserError, match="distill.sskd.keep"):
        load_distill_config(RECIPE, ["distill.sskd.keep=test"])
