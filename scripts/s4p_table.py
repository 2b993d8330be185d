"""The Dubai S4P table of docs/RESULTS.md from the finished run folders, with mean and spread.

    .venv/bin/python scripts/s4p_table.py [--runs runs/dubai] [--recipe dubai_cpu|dubai_cpu_long]
    .venv/bin/python scripts/s4p_table.py --curation [--runs runs/curate]

Reads ``<runs>/<config>_seed<N>/test.json`` (Tile 8 scores of the run's best checkpoint) and
``run.json`` (fit time) of the three variants of one recipe of ``scripts/dubai_s4p_results.sh``
(``RECIPE_supervised``, ``RECIPE``, ``RECIPE_full``) and prints one
row per run, then per variant the mean and sample standard deviation over its seeds, and the
S4P-minus-supervised difference per seed (paired by seed: same crops and initialisation).
With ``--curation``: the RS4P comparison instead, S4P on the curated half of the unlabelled pool
(``dubai_cpu_curated``) against a random half (``dubai_cpu_random_half``), curated minus random
per seed.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

# (config suffix, label); the first two are compared per seed (second minus first).
VARIANTS = [
    ("_supervised", "supervised-only (12 labelled)"),
    ("", "S4P (12 labelled + 42 unlabelled)"),
    ("_full", "fully supervised (54 labelled)"),
]
CURATION = [
    ("_random_half", "S4P, random half of the pool (539 windows)"),
    ("_curated", "S4P, curated half of the pool (539 windows)"),
]
CLASSES = ("building", "land", "road", "vegetation", "water")


def load(runs: Path, recipe: str, variants: list[tuple[str, str]]) -> dict[str, dict[int, dict]]:
    """Per variant suffix, per seed: the test scores plus ``fit_minutes``."""
    found: dict[str, dict[int, dict]] = {}
    for config, _ in variants:
        for test in sorted(runs.glob(f"{recipe}{config}_seed*/test.json")):
            seed = int(test.parent.name.rsplit("_seed", 1)[1])
            scores = json.loads(test.read_text())
            history = json.loads((test.parent / "run.json").read_text())
            scores["fit_minutes"] = sum(r.get("fit_seconds", 0) for r in history) / 60
            found.setdefault(config, {})[seed] = scores
    return found


def mean_sd(values: list[float]) -> str:
    if len(values) < 2:
        return f"{values[0]:.2f}" if values else "-"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"


def table(runs: Path, recipe: str, variants: list[tuple[str, str]] = VARIANTS) -> str:
    found = load(runs, recipe, variants)
    lines = [
        "| variant | seed | test mIoU | OA | " + " | ".join(CLASSES) + " | fit (min) |",
        "|---|---|---|---|" + "---|" * len(CLASSES) + "---|",
    ]
    for config, label in variants:
        for seed, s in sorted(found.get(config, {}).items()):
            ious = " | ".join(f"{s['iou'][c]:.2f}" for c in CLASSES)
            oa, fit = s["overall_accuracy"], s["fit_minutes"]
            lines.append(f"| {label} | {seed} | {s['miou']:.2f} | {oa:.2f} | {ious} | {fit:.1f} |")
    lines += ["", "| variant | seeds | test mIoU (mean ± sd) |", "|---|---|---|"]
    for config, label in variants:
        runs_ = found.get(config, {})
        seeds = ", ".join(str(k) for k in sorted(runs_))
        lines.append(f"| {label} | {seeds} | {mean_sd([s['miou'] for s in runs_.values()])} |")
    (base, base_label), (other, other_label) = variants[:2]
    ref, new = found.get(base, {}), found.get(other, {})
    paired = sorted(set(ref) & set(new))
    if paired:
        gains = [new[k]["miou"] - ref[k]["miou"] for k in paired]
        per_seed = ", ".join(f"seed {k}: {g:+.2f}" for k, g in zip(paired, gains, strict=True))
        lines += ["", f"{other_label} minus {base_label}, paired by seed: {per_seed}; "
                  f"mean {statistics.mean(gains):+.2f}"]  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, help="run folders (runs/dubai; runs/curate)")
    parser.add_argument("--recipe", default="dubai_cpu", help="config stem: dubai_cpu (300 steps)"
                        " or dubai_cpu_long (600 steps)")  # fmt: skip
    parser.add_argument("--curation", action="store_true", help="curated vs random half")
    args = parser.parse_args()
    if args.curation:
        print(table(args.runs or Path("runs/curate"), "dubai_cpu", CURATION))
    else:
        print(table(args.runs or Path("runs/dubai"), args.recipe))


if __name__ == "__main__":
    main()
