"""Where a distillation step's time goes: data loading and the parts of one training step.

    python bench/bench_distill_step.py [CONFIG] [--set KEY=VALUE ...] [--threads 1]
                                       [--steps 12] [--repeats 3] [--against CHECKOUT]

Builds the stage a recipe trains longest (SSKD's knowledge transfer; CONFIG defaults to the
bundled model's recipe, configs/distill/default_dubai_cpu.yaml) exactly as ``s5geo distill``
does: the real Dubai images of its splits, the teacher's soft labels (labelled first when the
recipe's teacher has not labelled them under ``train.out_dir`` yet; ``--set`` overrides config
keys as ``s5geo distill --set`` does), s5geo's DistillModule and
DistillDataModule. Then times, in the calling process with ``--threads`` intra-op threads:

- ``batch``: building one batch of views (what the DataLoader's worker does), 0 workers;
- ``step``: one training step (``training_step`` + backward + AdamW) on pre-built batches, and
  inside it ``net`` (each network forward: the weak view with gradients, the strong view
  without), ``strong_view`` (kornia photometric augmentation), ``pixel_contrast`` (L_pxl) and
  ``regions`` (its connected-region labelling), ``backward`` (backward + optimizer step).

Medians over ``--steps`` steps after 2 warm-up steps. With ``--against CHECKOUT`` every repeat
runs twice, alternating, in fresh processes: s5geo from this checkout and from CHECKOUT (its
modules on PYTHONPATH), and the table gives both and their ratio. Needs the development install
(torch) and ``S5GEO_DATA``. Lightning's loop (logging, checkpoints, validation) is not included:
``s5geo distill``'s own s/step in its metrics.csv covers that. The table is also written to
bench/out/distill_step.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PARTS = ("batch", "step", "net", "strong_view", "pixel_contrast", "regions", "backward")


def measure(config: Path, overrides: list[str], threads: int, steps: int) -> dict[str, float]:
    """Median milliseconds of each part (one process, the s5geo that is importable)."""
    from dataclasses import asdict

    import torch

    import s5geo.distill.losses as losses
    from s5geo.datasets.classes import get_class_map
    from s5geo.distill.config import load_distill_config
    from s5geo.distill.data import DistillDataModule
    from s5geo.distill.module import DistillModule
    from s5geo.distill.pipelines import context

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    cfg = load_distill_config(config, overrides)
    ctx = context(cfg, ROOT / "bench" / "out" / "distill_step", None)
    soft = ctx.teacher_labels()
    labeled, pool = ctx.samples("labeled", soft)(), ctx.samples("pool", soft)()
    stage = cfg.distill.sskd.transfer
    run_cfg = cfg.stage_run_config(cfg.model, stage, "transfer")
    ignore = get_class_map(cfg.data.class_map).ignore_index
    module = DistillModule(run_cfg.to_dict(), asdict(stage), asdict(cfg.distill.contrast), ignore)
    module.log_dict = lambda *args, **kwargs: None  # type: ignore[method-assign]
    data = DistillDataModule(cfg.data, labeled, pool, steps + 2, stage.batch_size, 0)
    times: dict[str, list[float]] = defaultdict(list)

    def timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            out = fn(*args, **kwargs)
            times[name].append(time.perf_counter() - start)
            return out

        return run

    loader = iter(data.train_dataloader())
    batches = [timed("batch", lambda: next(loader))() for _ in range(steps + 2)]
    module.net.forward = timed("net", module.net.forward)  # type: ignore[method-assign]
    if module.contrast is not None:
        module.strong.forward = timed("strong_view", module.strong.forward)  # type: ignore[method-assign]
        module.contrast.forward = timed("pixel_contrast", module.contrast.forward)  # type: ignore[method-assign]
        losses.connected_regions = timed("regions", losses.connected_regions)
    optimizer = torch.optim.AdamW(module.parameters(), lr=stage.lr)
    module.train()
    for i, batch in enumerate(batches):
        if i == 2:  # warm-up steps (and the first two batches) are not counted
            times = defaultdict(list, {"batch": times["batch"][2:]})
        start = time.perf_counter()
        loss = module.training_step(batch, i)
        mid = time.perf_counter()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        end = time.perf_counter()
        times["backward"].append(end - mid)
        times["step"].append(end - start)
    return {k: 1000 * statistics.median(v) for k, v in times.items()}


def run_arm(
    config: Path, overrides: list[str], threads: int, steps: int, checkout: Path | None
) -> dict[str, float]:
    """``measure`` in a fresh process, s5geo from ``checkout`` (or this one)."""
    env = dict(os.environ)
    if checkout is not None:
        env["PYTHONPATH"] = str(checkout.resolve())
    cmd = [sys.executable, __file__, str(config), "--threads", str(threads)]
    cmd += ["--steps", str(steps), "--child", *(f"--set={o}" for o in overrides)]
    out = subprocess.run(cmd, env=env, cwd=ROOT, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def table(results: dict[str, list[dict[str, float]]]) -> str:
    """Markdown: median over repeats per part, per arm, and B/A when there are two arms."""
    arms = list(results)
    head = "| part (ms) | " + " | ".join(arms) + (" | ratio |" if len(arms) == 2 else "")
    lines = [head, "|---" * (len(arms) + 1 + (len(arms) == 2)) + "|"]
    for part in PARTS:
        values = [
            statistics.median(r[part] for r in results[arm] if part in r)
            if any(part in r for r in results[arm])
            else float("nan")
            for arm in arms
        ]
        row = f"| {part} | " + " | ".join(f"{v:.1f}" for v in values)
        if len(arms) == 2:
            row += f" | {values[0] / values[1]:.2f}"
        lines.append(row + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument(
        "config", nargs="?", type=Path, default=ROOT / "configs/distill/default_dubai_cpu.yaml"
    )
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--against", type=Path, help="another s5geo checkout (A/B)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(measure(args.config, args.overrides, args.threads, args.steps)))
        return
    arms: dict[str, Path | None] = {"this checkout": None}
    if args.against:
        arms[str(args.against)] = args.against
    results: dict[str, list[dict[str, float]]] = {name: [] for name in arms}
    for repeat in range(args.repeats):
        for name, checkout in arms.items():
            results[name].append(
                run_arm(args.config, args.overrides, args.threads, args.steps, checkout)
            )
            print(f"repeat {repeat + 1}/{args.repeats} {name}: {results[name][-1]}", flush=True)
    report = table(results)
    print(report)
    out = ROOT / "bench" / "out" / "distill_step.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    setup = f"{args.threads} thread(s), {args.steps} steps, {args.repeats} repeats"
    out.write_text(f"{setup}\n\n{report}\n")


if __name__ == "__main__":
    main()
