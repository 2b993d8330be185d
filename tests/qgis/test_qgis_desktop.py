"""Desktop smoke test: the real ``qgis`` program under Xvfb loads the plugin, segments part of the
NAIP scene through Processing and shows the styled result (screenshots kept in runs/qgis-smoke/
as a test artifact)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

pytest.importorskip("qgis.core")

REPO = Path(__file__).resolve().parents[2]


def test_desktop_qgis_shows_styled_result(scene_path: Path) -> None:
    out = REPO / "runs" / "qgis-smoke"
    env = dict(os.environ, S5GEO_SMOKE_OUT=str(out), S5GEO_DATA=str(scene_path.parents[1]))
    done = subprocess.run(
        [str(REPO / "scripts" / "qgis" / "desktop_smoke.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert "s5geo_plugin" in report["plugins"]
    assert report["layers"] == {
        "landcover.tif": "paletted",
        "landcover.gpkg": "categorizedSymbol",
    }
    assert (out / "qgis-window.png").stat().st_size > 10_000
