"""`s5geo train`/`evaluate` refuse bad input with one error line and exit status 2."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def s5geo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "s5geo.cli.main", *args],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )  # fmt: skip


def test_unknown_config_key_is_named(tmp_path: Path) -> None:
    result = s5geo("train", "configs/s4p/dubai_cpu.yaml", "--set", "train.stepz=3")
    assert result.returncode == 2
    assert (
        result.stderr.strip().splitlines()[-1].startswith("error: unknown config key train.stepz")
    )


def test_missing_files_are_user_errors(tmp_path: Path) -> None:
    result = s5geo("train", str(tmp_path / "absent.yaml"))
    assert result.returncode == 2 and "config file not found" in result.stderr
    result = s5geo("evaluate", str(tmp_path / "m.ckpt"), "--data", "configs/data/dubai.yaml")
    assert result.returncode == 2 and "model not found" in result.stderr


def test_help_shows_an_example() -> None:
    assert "Example" in s5geo("train", "--help").stdout
    assert "Example" in s5geo("evaluate", "--help").stdout
