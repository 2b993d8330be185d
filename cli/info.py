"""``s5geo info``: describe a model file, a scene, or a training config."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from s5geo.errors import UserError

EXAMPLE = """
Examples:

    s5geo info                      # the bundled default model
    s5geo info model.onnx --json    # a model's classes, bands, resolution, tiling
    s5geo info scene.tif            # a scene's size, bands, CRS, nodata
    s5geo info configs/s4p/vit_b.yaml --set model.num_classes=16   # a config's model and size
"""


def _describe(path: str | None, overrides: list[str]) -> dict[str, Any]:
    if path is None or path == "default":
        from s5geo.infer import load_model

        m = load_model(None)
        return {"kind": "model", "path": str(m.path), "provider": m.provider, **m.info.describe()}
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".onnx":
        from s5geo.infer import load_model

        m = load_model(p)
        return {"kind": "model", "path": str(p), "provider": m.provider, **m.info.describe()}
    if suffix in (".yaml", ".yml"):
        if not p.exists():
            raise UserError(f"{p}: no such file")
        try:
            from s5geo.models import describe_config
        except ImportError as exc:
            raise UserError(
                "describing a config needs the training install: "
                f"pip install 's5geo[train]' ({exc})"
            ) from None
        return {"kind": "config", "path": str(p), **describe_config(p, overrides)}
    from s5geo.io.scene import scene_profile

    return {"kind": "scene", **scene_profile(path).describe()}  # a GDAL name, not normalised


def info(
    path: str | None = typer.Argument(None, help="Model (.onnx), scene, or config (.yaml)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for machines."),
    overrides: list[str] = typer.Option([], "--set", help="Config override key=value."),
) -> None:
    """Describe a model file, a scene or a config; without PATH, the bundled model."""
    if overrides and not (path or "").lower().endswith((".yaml", ".yml")):
        raise UserError("--set applies to configs (.yaml) only")
    described = _describe(path, overrides)
    if as_json:
        print(json.dumps(described, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(
        show_header=False, show_edge=False, title=f"{described['kind']}: {path or 'default'}"
    )
    for key, value in described.items():
        if key == "kind":
            continue
        text = json.dumps(value) if isinstance(value, dict | list) else str(value)
        table.add_row(key, text)
    Console().print(table)


def register(app: typer.Typer) -> None:
    app.command(help=(info.__doc__ or "") + "\n" + EXAMPLE)(info)
