"""``s5geo distill``: one run folder per run, the method's stages, a summary of every stage.

The run folder (:mod:`s5geo.train.rundir`: ``<train.out_dir>/<run_name>``, ``config.yaml``,
``run.json`` with the seed, versions and stages of each session) holds one folder per stage (see
:mod:`s5geo.distill.stage`), ``soft/`` (soft labels of each labelling pass; the pre-trained
teacher's are shared by all runs in ``<out_dir>/teacher_soft/``), ``summary.csv``/
``summary.json`` (val and test mIoU of every finished stage) and, once every stage has finished,
``student.json`` (the stage and checkpoint to export, see :func:`choose_student`). A folder that
already exists is continued only with ``resume``.
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path
from typing import Any

from s5geo.distill.config import DistillConfig
from s5geo.errors import UserError
from s5geo.train.rundir import append_session, run_folder, seed_run, session_record, write_config


def write_summary(run: Path, stages: tuple[str, ...]) -> list[dict[str, Any]]:
    """``summary.csv``/``summary.json``: one row per finished stage, in method order."""
    rows = []
    for name in stages:
        path = run / name / "stage.json"
        if not path.is_file():
            continue
        m = json.loads(path.read_text())
        rows.append(
            {
                "stage": name,
                "model": m["model"],
                "parameters": m["parameters"],
                "steps": m["steps"],
                "val_miou": m["val"]["miou"],
                "test_miou": m["test"]["miou"],
                "fit_seconds": m["fit_seconds_this_session"],
                "checkpoint": m["checkpoint"],
            }
        )
    (run / "summary.json").write_text(json.dumps(rows, indent=2))
    if rows:
        with open(run / "summary.csv", "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    return rows


def choose_student(
    cfg: DistillConfig, names: tuple[str, ...], rows: list[dict[str, Any]]
) -> dict[str, Any] | None:
    """The run's student once every stage that is not skipped has finished, else None.

    It is the last stage's student, except for SSKD with ``distill.sskd.keep: best_val``: then
    the better of the transferred and the refined student on the val split (ties go to the
    refined one). Only val decides: the test split stays a held-out score.
    """
    done = {r["stage"]: r for r in rows}
    needed = [n for n in names if not cfg.distill.skips(n)]
    if not needed or any(n not in done for n in needed):
        return None
    candidates = [needed[-1]]
    if cfg.distill.method == "sskd" and cfg.distill.sskd.keep == "best_val":
        candidates = [n for n in ("refine", "transfer") if n in done]
    best = max(candidates, key=lambda n: done[n]["val_miou"])  # first of equals: refine
    others = {n: done[n]["val_miou"] for n in candidates if n != best}
    rule = cfg.distill.sskd.keep if cfg.distill.method == "sskd" else "last"
    return {**done[best], "rule": rule, "other_val_miou": others}


def check_skip(cfg: DistillConfig, names: tuple[str, ...]) -> None:
    """UserError unless every ``distill.skip`` entry names a stage or a stage group (``adapt``)."""
    known = list(dict.fromkeys([*names, *(n.split("_")[0] for n in names)]))
    for entry in cfg.distill.skip:
        if entry not in known:
            raise UserError(
                f"config key distill.skip: {entry!r} is not allowed; it must be one of "
                f"{', '.join(known)} (stages of {cfg.distill.method})"
            )


def check_distill(cfg: DistillConfig, names: tuple[str, ...]) -> None:
    """Everything ``s5geo distill`` can refuse before it writes or starts anything: stages to
    skip, the student's name and class count, the data and its splits, the teacher checkpoint."""
    from s5geo.models.checkpoint import load_torch_file
    from s5geo.train.preflight import check_data, check_model

    check_skip(cfg, names)
    check_model(cfg.model, cfg.data, smp=True)
    d = cfg.data
    labeled = cfg.train.labeled_split or d.split_labeled
    check_data(d, [labeled, d.split_unlabeled, d.split_val, d.split_test], kinds=("image_folder",))
    if cfg.distill.method != "supervised":
        teacher = Path(cfg.distill.teacher)
        if not teacher.is_file():
            raise UserError(f"teacher checkpoint not found: {teacher} (set distill.teacher)")
        load_torch_file(teacher, mmap=True)


def distill(
    cfg: DistillConfig, config_path: Path, stage: str | None = None, resume: bool = False
) -> Path:
    """Run the configured method (or only ``stage``) into its run folder; return the folder."""
    from s5geo.distill.pipelines import PIPELINES, context, stage_names

    names = stage_names(cfg)
    if stage is not None and stage not in names:
        raise UserError(
            f"unknown stage {stage!r} for {cfg.distill.method}; known: {', '.join(names)}"
        )
    run = run_folder(cfg.train, config_path)
    if (run / "config.yaml").is_file() and not (resume or stage):
        raise UserError(
            f"run folder {run} exists: pass --resume to continue it, or set train.run_name"
        )
    check_distill(cfg, names)  # nothing is written before the recipe is known to work
    write_config(run, cfg.to_dict())
    seed_run(cfg.train)  # each stage seeds again before its fit
    started = time.time()
    ctx = context(cfg, run, stage)
    PIPELINES[cfg.distill.method](ctx)
    rows = write_summary(run, names)
    student = choose_student(cfg, names, rows)
    if student is not None:
        (run / "student.json").write_text(json.dumps(student, indent=2))
    else:  # a stage was removed to be trained again: no student until it has finished
        (run / "student.json").unlink(missing_ok=True)
    append_session(
        run,
        {
            **session_record(cfg.train),
            "stage": stage,
            "seconds": round(time.time() - started, 1),
            "finished": [r["stage"] for r in rows],
        },
    )
    return run
