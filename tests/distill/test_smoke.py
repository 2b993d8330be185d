"""Smoke runs of every method for a handful of steps on a tiny subset of the real Dubai data.

Checks the run folder (resolved config, per-stage metrics, checkpoints, curves), resume/skip
behaviour, and that stage checkpoints reload as s5geo checkpoints for export.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

pytest.importorskip("segmentation_models_pytorch")

from s5geo.distill.config import load_distill_config
from s5geo.distill.runner import distill
from s5geo.errors import UserError

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "distill"


def _run(
    method: str, tiny: list[str], out: Path, teacher: Path, extra: list[str], **kw: object
) -> Path:
    recipe = CONFIGS / f"{method}_dubai_cpu.yaml"
    cfg = load_distill_config(
        recipe, [*tiny, f"train.out_dir={out}", f"distill.teacher={teacher}", *extra]
    )
    return distill(cfg, recipe, **kw)  # type: ignore[arg-type]


def _stage_ok(run: Path, name: str) -> dict[str, object]:
    stage = json.loads((run / name / "stage.json").read_text())
    assert 0 <= stage["val"]["miou"] <= 100 and stage["test"]["miou"] is not None
    assert (run / name / "metrics.csv").is_file() and (run / name / "curves.png").is_file()
    assert (run / name / "checkpoints" / "last.ckpt").is_file()
    return stage


def test_kd_smoke_and_resume(tiny_overrides: list[str], tiny_teacher: Path, tmp_path: Path) -> None:
    steps = ["distill.kd.steps=2", "distill.kd.batch_size=2"]
    run = _run("kd", tiny_overrides, tmp_path, tiny_teacher, steps)
    _stage_ok(run, "kd")
    assert (run / "config.yaml").is_file() and (run / "summary.csv").is_file()
    (shared,) = (tmp_path / "teacher_soft").iterdir()  # teacher labels shared by runs
    assert len(list(shared.glob("*.pt"))) == 6
    with pytest.raises(UserError, match="--resume"):
        _run("kd", tiny_overrides, tmp_path, tiny_teacher, steps)
    before = (run / "kd" / "stage.json").stat().st_mtime
    _run("kd", tiny_overrides, tmp_path, tiny_teacher, steps, resume=True)
    assert (run / "kd" / "stage.json").stat().st_mtime == before  # finished stage kept
    # an interrupted stage (no stage.json) continues from last.ckpt up to the new step count
    (run / "kd" / "stage.json").unlink()
    longer = ["distill.kd.steps=3", "distill.kd.batch_size=2"]
    _run("kd", tiny_overrides, tmp_path, tiny_teacher, longer, resume=True)
    stage = _stage_ok(run, "kd")
    assert stage["resumed"] and stage["steps"] == 3
    assert list(run.glob("config.*.yaml"))  # the changed config of the resumed session is kept
    # a finished stage is never reused for a recipe of another budget
    with pytest.raises(UserError, match="finished at 3 steps but the recipe asks for 2"):
        _run("kd", tiny_overrides, tmp_path, tiny_teacher, steps, resume=True)
    assert _stage_ok(run, "kd")["steps"] == 3


def test_sskd_stages_skip_and_single_stage(
    tiny_overrides: list[str], tiny_teacher: Path, tmp_path: Path
) -> None:
    steps = [f"distill.sskd.{s}.steps=2" for s in ("adapt_finetune", "adapt_selftrain",
                                                   "transfer", "refine")]  # fmt: skip
    steps += [f"distill.sskd.{s}.batch_size=2" for s in ("adapt_finetune", "adapt_selftrain",
                                                         "transfer", "refine")]  # fmt: skip
    run = _run("sskd", tiny_overrides, tmp_path, tiny_teacher, [*steps, "distill.skip=[refine]"])
    for name in ("adapt_finetune", "adapt_selftrain", "transfer"):
        _stage_ok(run, name)
    assert not (run / "refine").exists()
    student = json.loads((run / "student.json").read_text())  # refine skipped: the transfer one
    assert student["stage"] == "transfer" and student["other_val_miou"] == {}
    for tag in ("adapt_finetune", "adapted"):
        assert len(list((run / "soft" / tag).glob("*.pt"))) == 6
    _run("sskd", tiny_overrides, tmp_path, tiny_teacher, steps, stage="refine")
    refine = _stage_ok(run, "refine")
    summary = json.loads((run / "summary.json").read_text())
    assert [r["stage"] for r in summary] == [
        "adapt_finetune",
        "adapt_selftrain",
        "transfer",
        "refine",
    ]
    metrics = (run / "transfer" / "metrics.csv").read_text()
    assert "train/pxl" in metrics and "val/miou" in metrics
    assert refine["model"] == "smp:FPN:tu-mobilenetv3_small_100"
    student = json.loads((run / "student.json").read_text())
    by_val = {r["stage"]: r["val_miou"] for r in summary if r["stage"] in ("transfer", "refine")}
    assert student["stage"] == max(("refine", "transfer"), key=by_val.__getitem__)
    assert (
        student["checkpoint"]
        == json.loads((run / student["stage"] / "stage.json").read_text())["checkpoint"]
    )
    shutil.rmtree(run / "refine")  # to be trained again: the run has no student until then
    _run("sskd", tiny_overrides, tmp_path, tiny_teacher, steps, stage="transfer")
    assert not (run / "student.json").exists()


def test_mckd_partitions_and_stages(
    tiny_overrides: list[str], tiny_teacher: Path, tmp_path: Path
) -> None:
    steps = [
        "distill.mckd.cross_stages=1", "distill.mckd.cross.steps=2", "distill.mckd.final.steps=2",
        "distill.mckd.cross.batch_size=2", "distill.mckd.final.batch_size=2",
    ]  # fmt: skip
    run = _run("mckd", tiny_overrides, tmp_path, tiny_teacher, steps)
    for name in ("cross1_A", "cross1_B", "final"):
        _stage_ok(run, name)
    assert json.loads((run / "student.json").read_text())["stage"] == "final"
    parts = (run / "partitions.txt").read_text().splitlines()
    a, b = (set(p.split(": ")[1].split()) for p in parts)
    assert not a & b and len(a | b) == 4
    assert len({n.split("_")[0] for n in a}) == 1  # whole Tiles per partition
    assert {n.split("_")[0] for n in a} != {n.split("_")[0] for n in b}
    assert {p.stem for p in (run / "soft" / "cross1_A").glob("*.pt")} == a  # S_B relabelled A
    assert {p.stem for p in (run / "soft" / "cross1_B").glob("*.pt")} == b


def test_missing_teacher_is_a_user_error_before_any_output(
    tiny_overrides: list[str], tmp_path: Path
) -> None:
    with pytest.raises(UserError, match="teacher checkpoint not found"):
        _run("kd", tiny_overrides, tmp_path, tmp_path / "none.ckpt", [])
    assert not any(tmp_path.iterdir())


def test_unknown_stage_is_a_user_error(tiny_overrides: list[str], tmp_path: Path) -> None:
    with pytest.raises(UserError, match="unknown stage"):
        _run("sskd", tiny_overrides, tmp_path, tmp_path / "none.ckpt", [], stage="distil")


def test_partition_keeps_groups_whole_and_balances_pixels() -> None:
    from s5geo.distill.pipelines import partition

    names = [f"Tile{t}_image_part_00{i}" for t in (1, 3, 7) for i in range(3)]
    pixels = [1] * 3 + [1] * 3 + [4] * 3  # Tile 7 has as many pixels as Tiles 1 and 3 together
    a, b = partition(names, r"^(Tile\d+)_", pixels)
    groups = [{names[i].split("_")[0] for i in side} for side in (a, b)]
    assert sorted(map(sorted, groups)) == [["Tile1", "Tile3"], ["Tile7"]]
    with pytest.raises(UserError, match="two groups"):
        partition(names[:3], r"^(Tile\d+)_", pixels[:3])


def test_cli_names_the_student_to_export(tiny_overrides: list[str], tmp_path: Path) -> None:
    import subprocess
    import sys

    sets = [*tiny_overrides, f"train.out_dir={tmp_path}", "distill.supervised.steps=2",
            "distill.supervised.batch_size=2"]  # fmt: skip
    recipe = str(CONFIGS / "supervised_dubai_cpu.yaml")
    done = subprocess.run(
        [sys.executable, "-m", "s5geo.cli.main", "distill", recipe,
         *(arg for s in sets for arg in ("--set", s))],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    student = json.loads((tmp_path / "supervised_dubai_cpu_seed0" / "student.json").read_text())
    assert student["stage"] == "supervised"
    assert f"student: supervised (val mIoU {student['val_miou']:.2f})" in done.stdout
    assert f"s5geo export {student['checkpoint']} --out model.onnx" in done.stdout
