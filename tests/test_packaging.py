"""Packaging: pyproject.toml lists every package (automatic discovery cannot map cli/ to
s5geo.cli), and the wheel carries the bundled model."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import tomllib
from helpers import ROOT


def test_every_package_is_listed() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    found = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for init in (ROOT / "s5geo").rglob("__init__.py")
    } | {"s5geo.cli"}
    assert config["package-dir"]["s5geo.cli"] == "cli"
    assert listed == found


def test_wheel_holds_the_bundled_model_and_every_package(tmp_path: Path) -> None:
    """The wheel `make dist` builds is the deployment install without the repository: it must
    carry the bundled model, every package (cli/ as s5geo.cli) and the `s5geo` command."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for name in ("s5geo", "cli"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    build = "from setuptools import build_meta; print(build_meta.build_wheel('dist'))"
    done = subprocess.run(
        [sys.executable, "-c", build], cwd=source, capture_output=True, text=True, check=True
    )
    wheel = source / "dist" / done.stdout.strip().splitlines()[-1]
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        model = archive.getinfo("s5geo/resources/default.onnx")
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        scripts = archive.read(entry_points).decode()
    assert model.file_size == (ROOT / "s5geo" / "resources" / "default.onnx").stat().st_size
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    for package in packages["packages"]:
        assert f"{package.replace('.', '/')}/__init__.py" in names
    assert "s5geo = s5geo.cli.main:run" in scripts
