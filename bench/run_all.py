"""Run every benchmark of docs/BENCHMARKS.md; each writes its report to bench/out/.

    python bench/run_all.py            # about 40 minutes on a 2-core machine

The figures in docs/BENCHMARKS.md are copied from these reports, with the machine they ran on.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
RUNS = [
    ["bench_predict.py", "overhead"],
    ["bench_predict.py", "memory", "--vector"],
    ["bench_polygonize.py", "--out", str(BENCH / "out")],
]


def main() -> None:
    for args in RUNS:
        print(f"== {' '.join(args)}", flush=True)
        subprocess.run([sys.executable, str(BENCH / args[0]), *args[1:]], check=True)
    print(f"reports: {BENCH / 'out'}")


if __name__ == "__main__":
    main()
