"""Run every benchmark of docs/BENCHMARKS.md; each writes its report to bench/out/.

    python bench/run_all.py            # about 45 minutes on a 2-core machine

The overhead benchmark runs with the random-weight convnet, the bundled model, and, when
``bench/out/teacher.onnx`` exists, a trained S4P teacher (``s5geo export
runs/dubai/dubai_cpu_seed0/checkpoints/best.ckpt --out bench/out/teacher.onnx``). The figures
in docs/BENCHMARKS.md are copied from these reports, with the machine they ran on. The
distillation-step benchmark runs when the default recipe's teacher checkpoint exists (`make
default-model` trains it).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
BUNDLED = BENCH.parent / "s5geo" / "resources" / "default.onnx"
TEACHER = BENCH / "out" / "teacher.onnx"
S4P_TEACHER = BENCH.parent / "runs/dubai/dubai_cpu_1200_seed0/checkpoints/best.ckpt"
RUNS = [
    ["bench_predict.py", "overhead"],
    ["bench_predict.py", "overhead", "--model", str(BUNDLED)],
    ["bench_predict.py", "memory", "--vector"],
    ["bench_polygonize.py", "--out", str(BENCH / "out")],
    ["bench_students.py", "--threads", "1"],
]


def main() -> None:
    runs = RUNS + (
        [["bench_predict.py", "overhead", "--model", str(TEACHER)]] if TEACHER.exists() else []
    )
    if S4P_TEACHER.exists():
        runs.append(["bench_distill_step.py"])
    for args in runs:
        print(f"== {' '.join(args)}", flush=True)
        subprocess.run([sys.executable, str(BENCH / args[0]), *args[1:]], check=True)
    print(f"reports: {BENCH / 'out'}")


if __name__ == "__main__":
    main()
