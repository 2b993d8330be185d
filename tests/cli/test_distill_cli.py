"""`s5geo distill`: help shows its example intact; bad recipes fail with one line, no run folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def s5geo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "s5geo.cli.main", *args],
        capture_output=True, text=True, cwd=ROOT, timeout=600,
        env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip


def test_help_example_keeps_its_brackets() -> None:
    done = s5geo("distill", "--help")
    assert done.returncode == 0 and "--set distill.skip=[adapt]" in done.stdout


def test_bad_values_fail_before_the_run_folder(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    recipe = "configs/distill/sskd_dubai_cpu.yaml"
    for override, expected in [
        ("distill.sskd.transfer.steps=0",
         "error: config key distill.sskd.transfer.steps: 0 is not allowed; it must be > 0"),
        ("distill.skip=[adapt_fintune]",
         "error: config key distill.skip: 'adapt_fintune' is not allowed; it must be one of "
         "adapt_finetune, adapt_selftrain, transfer, refine, adapt (stages of sskd)"),
    ]:  # fmt: skip
        done = s5geo("distill", recipe, "--set", override, "--set", f"train.out_dir={runs}")
        assert done.returncode == 2 and done.stderr.strip().splitlines() == [expected]
    assert not runs.exists()
