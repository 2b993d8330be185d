"""The README's Python example runs as written (on the NAIP scene, with the bundled model)."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

import pytest
from helpers import ROOT

from s5geo.infer.runtime import default_model_path


def python_examples() -> list[str]:
    """The README's ```python blocks, in order."""
    return re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.DOTALL)


@pytest.mark.realdata
def test_the_python_api_example_runs(
    real_data: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    example = next(code for code in python_examples() if "segment_scene(" in code)
    (tmp_path / "scene.tif").symlink_to(real_data / "naip" / "m_4709963_se_14_1_20200831.tif")
    (tmp_path / "model.onnx").symlink_to(default_model_path())
    (tmp_path / "example.py").write_text(example)
    monkeypatch.chdir(tmp_path)
    runpy.run_path("example.py", run_name="__main__")
    assert (tmp_path / "lc.tif").is_file() and (tmp_path / "lc.gpkg").is_file()
    printed = capsys.readouterr().out
    assert "predict: 100%" in printed or "polygonize: 100%" in printed
