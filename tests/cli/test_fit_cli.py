"""`s5geo fit` as users run it: real processes, real files, exit codes, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import shapely
from fit_helpers import (
    DEMO_LABELS,
    NAIP_2020,
    NAIP_SMALL,
    TOY_CLASSES,
    TOY_GEOMETRIES,
    write_crop,
    write_labels,
    write_toy_scene,
)

from s5geo.infer import load_model

S5GEO = [sys.executable, "-m", "s5geo.cli.main"]


def s5geo(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*S5GEO, *map(str, args)], capture_output=True, text=True, timeout=300)


def _files(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


def test_fit_toy_scene(tmp_path: Path) -> None:
    scene = write_toy_scene(tmp_path / "toy.tif")
    labels = write_labels(tmp_path / "labels.gpkg", TOY_GEOMETRIES, {"landcover": TOY_CLASSES})
    run = s5geo("fit", scene, "--labels", labels, "--out", tmp_path / "toy.onnx", "--no-maps")
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == [
        f"model: {tmp_path / 'toy.onnx'}",
        f"report: {tmp_path / 'toy.fit.json'}",
        f"confusion matrix: {tmp_path / 'toy.confusion.png'}",
    ]
    assert "spatial 2-fold CV: accuracy" in run.stderr  # the table's title
    assert "water" in run.stderr and "field" in run.stderr
    assert "1024 labelled pixels from 4 features" in run.stderr
    assert "warning" not in run.stderr and "Traceback" not in run.stderr
    assert _files(tmp_path) == {"toy.tif", "labels.gpkg", "toy.onnx", "toy.fit.json",
                                "toy.confusion.png"}  # fmt: skip
    assert load_model(tmp_path / "toy.onnx").info.class_names == {0: "field", 1: "water"}


@pytest.mark.realdata
def test_fit_naip_window_then_predict(real_data: Path, tmp_path: Path) -> None:
    scene = write_crop(real_data / NAIP_2020, tmp_path / "naip.tif", NAIP_SMALL)
    out = tmp_path / "naip.onnx"
    run = s5geo(
        "fit", scene, "--labels", DEMO_LABELS, "--out", out, "--no-maps", "--bands", "4,1,2"
    )
    assert run.returncode == 0, run.stderr
    warnings = [line for line in run.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == [
        "warning: 21 of 28 label features lie outside every scene and were not used",
        "warning: 2 of 28 label features cross a scene's edge; only their pixels inside were used",
        "warning: no accuracy estimate: each class needs at least two label features "
        "(polygons or points) for spatial cross-validation",
    ]
    assert "no cross-validation" in run.stderr
    report = json.loads((tmp_path / "naip.fit.json").read_text())
    assert report["validation"] is None and report["label_features"] == 7
    recipe = load_model(out).info.recipe
    assert recipe["scaling"]["encoder_bands"] == [4, 1, 2]  # colour infrared for the encoder
    assert "confusion matrix" not in run.stdout
    assert not (tmp_path / "naip.confusion.png").exists()
    predicted = s5geo("predict", scene, "--model", out, "--out", tmp_path / "lc.tif", "--quiet")
    assert predicted.returncode == 0, predicted.stderr
    assert (tmp_path / "lc.tif").exists()


def assert_one_error(run: subprocess.CompletedProcess[str], words: str) -> None:
    assert run.returncode == 2, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), run.stderr
    assert words in lines[0], lines[0]


def test_bad_labels_exit_2_with_one_line_and_write_nothing(tmp_path: Path) -> None:
    scene = write_toy_scene(tmp_path / "toy.tif")
    lines = write_labels(tmp_path / "lines.gpkg",
                         [shapely.LineString(g.exterior.coords) for g in TOY_GEOMETRIES],
                         {"class": TOY_CLASSES})  # fmt: skip
    ambiguous = write_labels(tmp_path / "two.gpkg", TOY_GEOMETRIES,
                             {"class": TOY_CLASSES, "type": ["a", "a", "b", "b"]})  # fmt: skip
    taken = tmp_path / "taken.onnx"
    taken.write_text("keep me")
    out = tmp_path / "m.onnx"
    cases: list[tuple[tuple[Path | str, ...], str]] = [
        ((lines,), "LineString geometries: draw polygons or points"),
        ((ambiguous,), "several fields could hold the class (class, type); choose one with "
                       "--class-field"),
        ((tmp_path / "nope.gpkg", "--out", taken), "taken.onnx exists; pass --overwrite"),
    ]  # fmt: skip
    before = _files(tmp_path)
    for (labels, *more), words in cases:
        args: list[str | Path] = ["--out", out] if "--out" not in more else []
        run = s5geo("fit", scene, "--labels", labels, *args, *more)
        assert_one_error(run, words)
        assert "Traceback" not in run.stderr and run.stdout == ""
    assert _files(tmp_path) == before
    assert taken.read_text() == "keep me"
