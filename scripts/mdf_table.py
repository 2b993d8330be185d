"""The three-dataset comparison table of docs/RESULTS.md (MoE-MDF) from the finished run folders.

    .venv/bin/python scripts/mdf_table.py [--runs runs/mdf] [--prefix s4p_] [--seeds 0,1]

Reads ``test.json`` (each dataset's held-out mIoU of the run's best checkpoint) and ``run.json``
(fit time) of ``<prefix>moe_p48``, ``<prefix>shared_p0`` and the three ``<prefix>sep_<dataset>``
runs of ``scripts/mdf_three_results.sh``, and prints one row per variant: parameters, mIoU per
dataset and their mean; then, where ``test.json`` records it, each variant's per-class IoU. The
separate models' row adds up their parameters and takes each dataset's score from its own model.
With several ``--seeds`` (runs of ``scripts/mdf_three_results.sh SEED``, named with the suffix
``_seedN`` for N > 0) it prints one table per seed and the mean and spread over seeds of each
variant's scores.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

DATASETS = ("dubai", "spacenet", "swiss_trees")
SEPARATE = {"dubai": "sep_dubai", "spacenet": "sep_spacenet", "swiss_trees": "sep_swiss"}


def _load(run: Path) -> tuple[dict, float] | None:
    """(test scores, fit seconds) of a finished run, or None."""
    if not (run / "test.json").is_file():
        return None
    history = json.loads((run / "run.json").read_text())
    fit = sum(r.get("fit_seconds", 0) for r in history)
    return json.loads((run / "test.json").read_text()), fit


def _suffix(seed: int) -> str:
    return "" if seed == 0 else f"_seed{seed}"


def variant_scores(runs: Path, prefix: str, seed: int) -> dict[str, list[float]]:
    """Per variant label, the test mIoU per dataset of one seed (finished variants only)."""
    got: dict[str, list[float]] = {}
    for name, label in (("moe_p48", "MoE-MDF"), ("shared_p0", "shared backbone")):
        run = _load(runs / f"{prefix}{name}{_suffix(seed)}")
        if run is not None:
            got[label] = [run[0]["miou"][d] for d in DATASETS]
    separate = {d: _load(runs / f"{prefix}{SEPARATE[d]}{_suffix(seed)}") for d in DATASETS}
    if all(separate.values()):
        got["separate models"] = [separate[d][0]["miou"][d] for d in DATASETS]  # type: ignore[index]
    return got


def summary(runs: Path, prefix: str, seeds: list[int]) -> str:
    """Mean ± sd over seeds of each variant's per-dataset and mean test mIoU."""
    per_seed = [variant_scores(runs, prefix, seed) for seed in seeds]
    lines = ["| variant | seeds | " + " | ".join(DATASETS) + " | mean |",
             "|---|---|" + "---|" * (len(DATASETS) + 1)]  # fmt: skip
    for label in ("MoE-MDF", "shared backbone", "separate models"):
        rows = [got[label] for got in per_seed if label in got]
        if not rows:
            continue
        cols = [list(c) for c in zip(*rows, strict=True)] + [[statistics.mean(r) for r in rows]]
        cells = [f"{statistics.mean(c):.2f} ± {statistics.stdev(c) if len(c) > 1 else 0:.2f}"
                 for c in cols]  # fmt: skip
        lines.append(f"| {label} | {len(rows)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def table(runs: Path, prefix: str, seed: int = 0) -> str:
    header = "| variant | parameters | " + " | ".join(f"{d} mIoU" for d in DATASETS)
    lines = [header + " | mean | fit time |", "|---|---|" + "---|" * len(DATASETS) + "---|---|"]
    for name, label in (("moe_p48", "MoE-MDF, p = 48"),
                        ("shared_p0", "shared backbone + 3 decoders, p = 0")):  # fmt: skip
        got = _load(runs / f"{prefix}{name}{_suffix(seed)}")
        if got is None:
            continue
        scores, fit = got
        ious = [scores["miou"][d] for d in DATASETS]
        run = f"{prefix}{name}{_suffix(seed)}"
        lines.append(f"| {label} (`{run}`) | {scores['parameters'] / 1e6:.2f} M | "
                     + " | ".join(f"{v:.2f}" for v in ious)
                     + f" | {statistics.mean(ious):.2f} | {fit:.0f} s |")  # fmt: skip
    separate = {d: _load(runs / f"{prefix}{SEPARATE[d]}{_suffix(seed)}") for d in DATASETS}
    if all(separate.values()):
        ious = [separate[d][0]["miou"][d] for d in DATASETS]  # type: ignore[index]
        params = sum(separate[d][0]["parameters"] for d in DATASETS)  # type: ignore[index]
        fits = " + ".join(f"{separate[d][1]:.0f}" for d in DATASETS)  # type: ignore[index]
        lines.append(f"| three separate models (`{prefix}sep_*`) | {params / 1e6:.2f} M | "
                     + " | ".join(f"{v:.2f}" for v in ious)
                     + f" | {statistics.mean(ious):.2f} | {fits} s |")  # fmt: skip
    return "\n".join(lines)


def class_table(runs: Path, prefix: str, seed: int = 0) -> str:
    """Per-class test IoU of each variant (where test.json records it), a column per class."""
    rows: dict[str, dict[str, dict[str, float | None]]] = {}
    for name, label in (("moe_p48", "MoE-MDF"), ("shared_p0", "shared backbone")):
        got = _load(runs / f"{prefix}{name}{_suffix(seed)}")
        if got is not None and "iou" in got[0]:
            rows[label] = got[0]["iou"]
    separate = {d: _load(runs / f"{prefix}{SEPARATE[d]}{_suffix(seed)}") for d in DATASETS}
    if all(r is not None and "iou" in r[0] for r in separate.values()):
        rows["separate models"] = {d: separate[d][0]["iou"][d] for d in DATASETS}  # type: ignore[index]
    if not rows:
        return ""
    columns = [(d, c) for d in DATASETS for c in next(iter(rows.values()))[d]]
    lines = ["| variant | " + " | ".join(f"{d} {c}" for d, c in columns) + " |",
             "|---|" + "---|" * len(columns)]  # fmt: skip
    for label, iou in rows.items():
        cells = [iou[d][c] for d, c in columns]
        lines.append(f"| {label} | " + " | ".join("-" if v is None else f"{v:.2f}" for v in cells)
                     + " |")  # fmt: skip
    return "Per-class test IoU:\n\n" + "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, default=Path("runs/mdf"))
    parser.add_argument("--prefix", default="s4p_", help="run-name prefix ('' for 120-step runs)")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds, e.g. 0,1")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    for seed in seeds:
        print(f"seed {seed}:\n\n{table(args.runs, args.prefix, seed)}\n")
        per_class = class_table(args.runs, args.prefix, seed)
        if per_class:
            print(per_class + "\n")
    if len(seeds) > 1:
        print(summary(args.runs, args.prefix, seeds))


if __name__ == "__main__":
    main()
