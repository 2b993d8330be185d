"""The deployment install works without torch: `s5geo predict`, `s5geo fit`, `import s5geo.infer`.

One test builds a fresh virtual environment with only `pip install .` (no extras), where torch is
genuinely absent, and runs the real command there; another checks that in a full install the
deployment path still never imports a training dependency.
"""

from __future__ import annotations

import json
import subprocess
import sys
import venv

import pytest
from helpers import ROOT

TRAINING_MODULES = ("torch", "torchgeo", "timm", "lightning", "kornia", "torchvision")


def test_predict_path_imports_no_training_dependency(tmp_path, make_scene, perpixel_model) -> None:
    scene = make_scene(100, 100)
    code = (
        "import sys, json; from s5geo.cli.main import app\n"
        f"app([ 'predict', {str(scene)!r}, '--out', {str(tmp_path / 'o.gpkg')!r}, "
        f"'--model', {str(perpixel_model)!r}, '--quiet'], standalone_mode=False)\n"
        "import s5geo.infer, s5geo.vector, s5geo.io.scene, s5geo.modelfile, s5geo.metrics\n"
        "import s5geo.evaluate, s5geo.datasets.classes, s5geo.datasets.splits, s5geo.plots\n"
        f"print(json.dumps([m for m in {TRAINING_MODULES!r} if m in sys.modules]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
    assert (tmp_path / "o.gpkg").exists() and (tmp_path / "o.tif").exists()


@pytest.mark.slow
def test_deployment_install_without_torch_runs_predict(tmp_path, real_data) -> None:
    env_dir = tmp_path / "deploy-venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    pip = [str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, str(ROOT)], check=True, capture_output=True, text=True)
    absent = subprocess.run([str(py), "-c", "import torch"], capture_output=True, text=True)
    assert absent.returncode != 0 and "No module named 'torch'" in absent.stderr
    subprocess.run([str(py), "-c", "import s5geo.infer, s5geo.vector"], check=True)
    scene = real_data / "naip" / "m_4709963_se_14_1_20200831.tif"
    out = tmp_path / "landcover.gpkg"
    run = subprocess.run(
        [str(env_dir / "bin" / "s5geo"), "predict", str(scene), "--out", str(out), "--quiet"],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    assert out.exists() and out.with_suffix(".tif").exists()
    fitted = tmp_path / "naip.onnx"
    labels = ROOT / "demo" / "naip_2020_labels.gpkg"
    fit = subprocess.run(
        [str(env_dir / "bin" / "s5geo"), "fit", str(scene), "--labels", str(labels),
         "--out", str(fitted), "--no-maps", "--quiet"],
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert fit.returncode == 0, fit.stderr
    assert fitted.exists() and fitted.with_suffix(".fit.json").exists()
