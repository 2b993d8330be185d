"""``s5geo info``: describe a model file, a scene, or a training config."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from s5geo.errors import UserError, install_hint

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
                f"describing a config needs the training install ({exc}): " + install_hint("train")
            ) from None
        return {"kind": "config", "path": str(p), **describe_config(p, overrides)}
    from s5geo.io.scene import scene_profile

    return {"kind": "scene", **scene_profile(path).describe()}  # a GDAL name, not normalised


def _describe_scenes(args: list[str], asset: str | None) -> list[dict[str, Any]]:
    """Several scenes, a URL, a glob, a list or a STAC document: one description per scene."""
    from s5geo.io.inputs import check_remote, remote_env, resolve_inputs
    from s5geo.io.scene import scene_profile

    described = []
    for scene in resolve_inputs(args, asset=asset):
        if scene.is_remote:
            check_remote(scene.name)  # one line for a 404 or a refused connection
        with remote_env():
            profile = scene_profile(scene.name).describe()
        if scene.item_id is not None:
            profile.update(item_id=scene.item_id, asset=scene.asset)
        described.append({"kind": "scene", **profile})
    return described


def _is_single_file(paths: list[str]) -> bool:
    """One model, config or local scene: described as before multi-scene inputs existed."""
    if len(paths) != 1:
        return False
    p = paths[0]
    lower = p.lower()
    if lower.endswith((".onnx", ".yaml", ".yml")) or p == "default":
        return True
    from s5geo.io.inputs import to_gdal_name

    many = p.startswith("@") or lower.endswith((".txt", ".json", ".geojson")) or "*" in p
    return not many and to_gdal_name(p) == p and not p.startswith("/vsicurl/")


def info(
    paths: list[str] | None = typer.Argument(
        None,
        help="Model (.onnx), config (.yaml), or scenes: files, URLs, globs, @list.txt, STAC JSON.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for machines."),
    overrides: list[str] = typer.Option([], "--set", help="Config override key=value."),
    asset: str | None = typer.Option(None, help="STAC asset key (default: the image asset)."),
) -> None:
    """Describe a model file, scenes or a config; without PATHS, the bundled model."""
    paths = paths or []
    path = paths[0] if paths else None
    if overrides and not (len(paths) == 1 and (path or "").lower().endswith((".yaml", ".yml"))):
        raise UserError("--set applies to configs (.yaml) only")
    if not paths or _is_single_file(paths):
        described: Any = _describe(path, overrides)
    else:
        described = _describe_scenes(paths, asset)
        if len(described) == 1:
            described = described[0]
    if as_json:
        print(json.dumps(described, indent=2))
        return
    if isinstance(described, list):
        for one in described:
            _print_table(one, one["path"])
        return
    _print_table(described, path)


def _print_table(described: dict[str, Any], path: str | None) -> None:
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
