"""The distillation results table of docs/RESULTS.md, from the finished run folders.

    .venv/bin/python scripts/distill_results.py [--runs runs/distill] [--teacher RUN_DIR]

One row per finished stage of every distillation run under ``--runs`` (each run's
``summary.json``) plus the S4P teacher (its run folder's ``test.json``): Tile 8 (test) and Tile 2
(val) mIoU, parameters and GFLOPs per 512x512 tile (``torch.utils.flop_counter``, one forward of
the stage's architecture). Throughput is per architecture, not per run: it comes from
``bench/bench_predict.py models`` (docs/BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

# Methods in the order of the table, and how each run folder's name starts.
# A run folder is ``<config stem>_seed<N>``; its method is the stem before ``_dubai``.
METHODS = [("supervised", "supervised-only student"), ("kd", "plain KD"), ("sskd", "SSKD"),
           ("sskd_long", "SSKD, 1200 transfer steps"), ("mckd", "MCKD"),
           ("kd_long", "plain KD, 1200 steps"), ("supervised_long", "supervised-only student"),
           ("kd_t1200", "plain KD, 1200 steps"),
           ("mckd_t1200", "MCKD, cross students 400 steps"),
           ("mckd_c1200", "MCKD, cross students 1200 steps"),
           ("sskd_1200", "SSKD without adaptation, 1200 transfer steps"),
           ("sskd_2400", "SSKD without adaptation, 2400 transfer steps"),
           ("default", "bundled default (fpn_r10t, 3000 transfer steps)"),
           ("mnv3l_3600", "MobileNetV3-Large student (3600 transfer steps)"),
           ("r10t_3600", "fpn_r10t, 3600 transfer steps"),
           ("r10t_2400", "fpn_r10t, 2400 transfer steps"),
           ("int8_2400", "INT8 student fpn_effl0 (2400 transfer steps)"),
           ("fast", "fast student fpn_mnv3s (1200 transfer steps)"),
           ("int8", "INT8 student fpn_effl0 (1200 transfer steps)"),
           ("sskd_3600", "SSKD without adaptation, 3600 transfer steps, 1 thread")]  # fmt: skip


def architecture_gflops(checkpoint: Path, cache: dict[str, float]) -> float:
    """GFLOPs per 512x512 tile of the network stored in ``checkpoint`` (cached by model name)."""
    from s5geo.distill.students import gflops
    from s5geo.models.loading import load_checkpoint_model

    net, cfg = load_checkpoint_model(checkpoint)
    if cfg.model.name not in cache:
        cache[cfg.model.name] = gflops(net.eval(), 512, len(cfg.data.bands))
    return cache[cfg.model.name]


def rows(runs: Path, teacher: Path) -> list[str]:
    """Markdown rows: method, stage, steps, test and val mIoU, parameters, GFLOPs."""
    cache: dict[str, float] = {}
    out = []
    from s5geo.models.loading import load_checkpoint_model

    test = json.loads((teacher / "test.json").read_text())
    ckpt = teacher / "checkpoints" / "best.ckpt"
    net, cfg = load_checkpoint_model(ckpt)
    params = sum(p.numel() for p in net.parameters())
    out.append(f"| S4P teacher | - | {cfg.train.steps} | {test['miou']:.2f} | - | "
               f"{params / 1e6:.2f} M | {architecture_gflops(ckpt, cache):.2f} |")  # fmt: skip
    for prefix, label in METHODS:
        for run in sorted(r for r in runs.iterdir() if r.name.split("_dubai")[0] == prefix):
            summary = run / "summary.json"
            if not summary.is_file():
                continue
            for s in json.loads(summary.read_text()):
                g = architecture_gflops(Path(s["checkpoint"]), cache)
                out.append(
                    f"| {label} | {s['stage']} | {s['steps']} | {s['test_miou']:.2f} | "
                    f"{s['val_miou']:.2f} | {s['parameters'] / 1e6:.2f} M | {g:.2f} |"
                )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, default=Path("runs/distill"))
    parser.add_argument("--teacher", type=Path, default=Path("runs/dubai/dubai_cpu_seed0"))
    args = parser.parse_args()
    print("| method | stage | steps | Tile 8 mIoU | val mIoU | parameters | GFLOPs / 512² |")
    print("|---|---|---|---|---|---|---|")
    for row in rows(args.runs, args.teacher):
        print(row)


if __name__ == "__main__":
    main()
