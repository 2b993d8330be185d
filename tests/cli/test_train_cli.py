"""`s5geo train`/`evaluate`/`curate` refuse bad input with one error line and exit status 2,
before anything is written (no run folder) or started (no Lightning banner)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def s5geo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "s5geo.cli.main", *args],
        capture_output=True, text=True, cwd=ROOT, timeout=600,
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


class Payload:
    """Pickled into a checkpoint: weights-only loading must refuse it."""


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The one stderr line of a refused command (exit status 2, no traceback, no banner)."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and "\x1b" not in lines[0]
    return lines[0]


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("train.steps=-5", "error: config key train.steps: -5 is not allowed; it must be > 0"),
        ("train.method=foo", "error: config key train.method: 'foo' is not allowed; "
                             "it must be one of supervised, s4p"),
        ("model.name=timm:nonexistent_net", "error: config key model.name: "
                                            "'timm:nonexistent_net': timm has no model"),
        ("data.root=/nonexistent/s5geo", "error: data root not found: /nonexistent/s5geo"),
    ],
)  # fmt: skip
def test_bad_recipe_fails_before_the_run_folder_and_the_trainer(
    tmp_path: Path, override: str, expected: str
) -> None:
    runs = tmp_path / "runs"
    result = s5geo("train", "configs/s4p/dubai_cpu.yaml", "--set", override,
                   "--set", f"train.out_dir={runs}")  # fmt: skip
    assert one_error_line(result).startswith(expected)
    assert not runs.exists()


def test_invalid_yaml_is_one_line(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("model: [unclosed\n")
    line = one_error_line(s5geo("train", str(broken)))
    assert line.startswith(f"error: {broken}: invalid YAML at line 1, column 8: ")


def write_refused_files(folder: Path) -> tuple[Path, Path]:
    """A checkpoint holding a pickled object, and a file that is no checkpoint at all."""
    torch = pytest.importorskip("torch")
    evil, image = folder / "evil.ckpt", folder / "some.tif"
    torch.save({"x": Payload()}, evil)
    image.write_bytes(b"II*\x00" + bytes(200))
    return evil, image


REFUSED = (
    "holds objects other than weights; s5geo refuses to unpickle it (not an s5geo checkpoint?)"
)


def test_evaluate_refuses_pickles_and_other_files(tmp_path: Path) -> None:
    evil, image = write_refused_files(tmp_path)
    data = ["--data", "configs/data/dubai.yaml", "--out", str(tmp_path / "out")]
    assert one_error_line(s5geo("evaluate", str(evil), *data)) == f"error: {evil} {REFUSED}"
    assert one_error_line(s5geo("evaluate", str(image), *data)) == (
        f"error: {image} is not a PyTorch checkpoint "
        "(s5geo evaluate takes a .ckpt or an .onnx model)"
    )
    assert not (tmp_path / "out").exists()


def test_curate_refuses_pickles(tmp_path: Path) -> None:
    evil, _ = write_refused_files(tmp_path)
    out = tmp_path / "out"
    result = s5geo("curate", str(evil), "--pool", "split:val", "--target", "1", "--out", str(out))
    assert one_error_line(result) == f"error: {evil} {REFUSED}"
    assert not out.exists()
