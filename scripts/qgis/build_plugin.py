#!/usr/bin/env python3
"""Build the QGIS plugin zip that "Plugins > Install from ZIP" accepts: dist/s5geo_plugin-<v>.zip.

The zip holds one folder, ``s5geo_plugin/`` (the plugin id; not ``s5geo``, which would shadow the
library in QGIS's Python), with the contents of ``qgis_plugin/`` minus caches. Entries have fixed
timestamps so the same sources give the same zip. Standard library only: any Python runs it.
"""

from __future__ import annotations

import configparser
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "qgis_plugin"
PLUGIN_ID = "s5geo_plugin"
SKIP_PARTS = {"__pycache__", ".pytest_cache", ".ruff_cache"}
SKIP_SUFFIXES = {".pyc", ".pyo"}
EPOCH = (2020, 1, 1, 0, 0, 0)


def plugin_version() -> str:
    meta = configparser.ConfigParser()
    meta.read(SOURCE / "metadata.txt", encoding="utf-8")
    return meta["general"]["version"]


def build(out_dir: Path) -> Path:
    """Write the zip into ``out_dir`` and return its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{PLUGIN_ID}-{plugin_version()}.zip"
    files = sorted(
        p
        for p in SOURCE.rglob("*")
        if p.is_file()
        and not SKIP_PARTS.intersection(p.relative_to(SOURCE).parts)
        and p.suffix not in SKIP_SUFFIXES
    )
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in files:
            info = zipfile.ZipInfo(f"{PLUGIN_ID}/{path.relative_to(SOURCE).as_posix()}", EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, path.read_bytes())
    return target


if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "dist"
    print(build(out))
