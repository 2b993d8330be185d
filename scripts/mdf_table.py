"""The three-dataset comparison table of docs/MDF.md from the finished run folders.

    .venv/bin/python scripts/mdf_table.py [--runs runs/mdf] [--prefix s4p_]

Reads ``test.json`` (each dataset's held-out mIoU of the run's best checkpoint) and ``run.json``
(fit time) of ``<prefix>moe_p48``, ``<prefix>shared_p0`` and the three ``<prefix>sep_<dataset>``
runs of ``scripts/mdf_three_results.sh``, and prints one row per variant: parameters, mIoU per
dataset and their mean. The separate models' row adds up their parameters and takes each
dataset's score from its own model.
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


def table(runs: Path, prefix: str) -> str:
    header = "| variant | parameters | " + " | ".join(f"{d} mIoU" for d in DATASETS)
    lines = [header + " | mean | fit time |", "|---|---|" + "---|" * len(DATASETS) + "---|---|"]
    for name, label in (("moe_p48", "MoE-MDF, p = 48"),
                        ("shared_p0", "shared backbone + 3 decoders, p = 0")):  # fmt: skip
        got = _load(runs / f"{prefix}{name}")
        if got is None:
            continue
        scores, fit = got
        ious = [scores["miou"][d] for d in DATASETS]
        lines.append(f"| {label} (`{prefix}{name}`) | {scores['parameters'] / 1e6:.2f} M | "
                     + " | ".join(f"{v:.2f}" for v in ious)
                     + f" | {statistics.mean(ious):.2f} | {fit:.0f} s |")  # fmt: skip
    separate = {d: _load(runs / f"{prefix}{SEPARATE[d]}") for d in DATASETS}
    if all(separate.values()):
        ious = [separate[d][0]["miou"][d] for d in DATASETS]  # type: ignore[index]
        params = sum(separate[d][0]["parameters"] for d in DATASETS)  # type: ignore[index]
        fits = " + ".join(f"{separate[d][1]:.0f}" for d in DATASETS)  # type: ignore[index]
        lines.append(f"| three separate models (`{prefix}sep_*`) | {params / 1e6:.2f} M | "
                     + " | ".join(f"{v:.2f}" for v in ious)
                     + f" | {statistics.mean(ious):.2f} | {fits} s |")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, default=Path("runs/mdf"))
    parser.add_argument("--prefix", default="s4p_", help="run-name prefix ('' for 120-step runs)")
    args = parser.parse_args()
    print(table(args.runs, args.prefix))


if __name__ == "__main__":
    main()
