"""Typed run configurations read from YAML, with dotted ``key=value`` overrides.

A config file has three sections, ``model``, ``data`` and ``train``, each a dataclass below. A file
may start with ``defaults: [other.yaml, ...]`` (paths relative to the file): those files are merged
first, then this file's keys on top (mappings merge key by key, everything else is replaced).
Overrides such as ``train.steps=200`` are applied last; their values are parsed as YAML scalars.

Every key is checked against the dataclass fields: an unknown key or a value of the wrong type is a
:class:`~s5geo.errors.UserError` that names the dotted key, so typos fail before a run starts.

Only PyYAML and the standard library are needed here: the deployment install may read configs.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from s5geo.errors import UserError

T = TypeVar("T")

DEFAULT_DATA_ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def data_root() -> Path:
    """Root of the shared real data: ``$S5GEO_DATA`` or ``../shared/data`` next to the project."""
    env = os.environ.get("S5GEO_DATA")
    return Path(env) if env else DEFAULT_DATA_ROOT


@dataclass
class ModelConfig:
    """Which network to build (see :func:`s5geo.models.build_model`)."""

    name: str = "vit_b"  # vit_b/l/h, vit_small/tiny, or "timm:<name>" for any timm CNN backbone
    num_classes: int = 16
    img_size: int = 512  # training size: sets the ViT position-embedding grid
    in_chans: int = 3
    decoder_channels: int = 256
    dropout: float = 0.1
    taps: list[int] | None = None  # ViT blocks feeding the pyramid; None: the variant's default
    drop_path: float = 0.0
    grad_checkpointing: bool = False
    pretrained: str | None = None  # local MAE/timm-format ViT checkpoint (or timm weights tag)


@dataclass
class DataConfig:
    """A labelled dataset and its protocol: where it is, its classes, splits and crops.

    ``kind`` selects the reader: ``image_folder`` (JPEG/PNG pairs on a pixel grid, no
    georeferencing, e.g. Dubai) or ``raster`` (GeoTIFF scenes with label rasters or vector labels,
    read through torchgeo). ``root`` may contain ``${S5GEO_DATA}``.
    """

    kind: str = "image_folder"
    root: str = "${S5GEO_DATA}/dubai"
    splits_file: str = "splits.json"
    class_map: str = "dubai"  # a name in s5geo.data.classes
    images_dir: str = "images"
    masks_dir: str = "masks"
    image_glob: str = "*.tif"  # raster kind: scene files under images_dir
    label_glob: str = "*.tif"  # raster kind: label rasters under masks_dir
    vector_labels: str | None = None  # raster kind: GeoPackage/Shapefile instead of label rasters
    label_attribute: str = "class_id"  # attribute of vector_labels holding the class id
    train_windows: int = 1000  # raster kind: random valid windows drawn per training source
    split_labeled: str = "train_labeled"
    split_unlabeled: str = "train_unlabeled"
    # S4P: a selection.gpkg of ``s5geo curate`` read instead of split_unlabeled (relative paths are
    # from the working folder; may contain ${S5GEO_DATA}). None: the split_unlabeled images.
    unlabeled_selection: str | None = None
    split_val: str = "val"
    split_test: str = "test"
    crop_size: int = 256
    scale_range: list[float] = field(default_factory=lambda: [0.5, 2.0])
    rotation: bool = False  # random 90-degree rotations in the weak view (paper option)
    input_scale: float = 255.0
    mean: list[float] = field(default_factory=lambda: [0.485, 0.456, 0.406])
    std: list[float] = field(default_factory=lambda: [0.229, 0.224, 0.225])
    bands: list[int] = field(default_factory=lambda: [1, 2, 3])

    def resolved_root(self) -> Path:
        """``root`` with ``${S5GEO_DATA}`` replaced by :func:`data_root`."""
        return Path(self.root.replace("${S5GEO_DATA}", str(data_root())))

    def resolved_unlabeled_selection(self) -> Path | None:
        """``unlabeled_selection`` with ``${S5GEO_DATA}`` replaced, or None when unset."""
        if not self.unlabeled_selection:
            return None
        return Path(self.unlabeled_selection.replace("${S5GEO_DATA}", str(data_root())))


@dataclass
class TrainConfig:
    """How to train: method, schedule, optimiser, S4P options and the Trainer's resources."""

    method: str = "s4p"  # "supervised" or "s4p"
    labeled_split: str | None = None  # None: data.split_labeled ("train" for fully supervised)
    steps: int = 120_000
    batch_size: int = 12  # labeled images per step; S4P adds as many unlabeled (+ CutMix partner)
    lr: float = 5e-5
    weight_decay: float = 0.01
    backbone_lr_mult: float = 1.0
    tau: float = 0.95
    cutmix_p: float = 0.5
    cutmix_area: list[float] = field(default_factory=lambda: [0.02, 0.4])
    cutmix_aspect: list[float] = field(default_factory=lambda: [0.3, 3.3])
    ema_teacher: bool = False
    ema_decay: float = 0.999
    val_every: int = 1000
    eval_tile: int = 512  # side of the sliding windows used for val/test
    seed: int = 0
    precision: str = "32-true"
    accelerator: str = "auto"
    devices: int = 1
    num_nodes: int = 1
    strategy: str = "auto"
    num_workers: int = 2
    threads: int = 2
    out_dir: str = "runs"
    run_name: str | None = None
    max_minutes: float | None = None  # stop (with a checkpoint) after this wall time
    checkpoint_every: int = 100


@dataclass
class Config:
    """A whole run: the three sections plus the file it came from."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (what is written as the run's resolved config)."""
        return dataclasses.asdict(self)


def load_yaml(path: Path) -> dict[str, Any]:
    """Read one YAML mapping, resolving its ``defaults`` includes recursively."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise UserError(f"{path}: a config must be a mapping of sections")
    includes = raw.pop("defaults", [])
    if isinstance(includes, str):
        includes = [includes]
    merged: dict[str, Any] = {}
    for include in includes:
        merged = merge(merged, load_yaml(path.parent / include))
    return merge(merged, raw)


def merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """Deep merge: mappings merge key by key, other values in ``top`` replace ``base``."""
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def apply_overrides(tree: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``a.b.c=value`` strings to a nested dict; values are parsed as YAML scalars/lists."""
    import yaml

    out = merge({}, tree)
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"override {item!r} is not of the form key=value")
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError:
            value = text
        parts = key.strip().split(".")
        node = out
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, dict):
                raise UserError(f"override {key}: {part} is not a section")
            else:
                child = node[part] = dict(child)
            node = child
        node[parts[-1]] = value
    return out


def from_dict(cls: type[T], data: dict[str, Any], prefix: str = "") -> T:
    """Build dataclass ``cls`` from ``data``, checking every key and value type."""
    if not isinstance(data, dict):
        raise UserError(f"{prefix.rstrip('.') or 'config'}: expected a mapping")
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in fields:
            raise UserError(f"unknown config key {prefix}{key}; known keys: {', '.join(fields)}")
        kwargs[key] = _coerce(hints[key], value, f"{prefix}{key}")
    return cls(**kwargs)


def _coerce(hint: Any, value: Any, key: str) -> Any:
    """Check ``value`` against type ``hint`` (ints are accepted for floats); return the value."""
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value if value is not None else {}, f"{key}.")  # type: ignore[arg-type]
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(arg, value, key)
            except UserError:
                continue
        raise UserError(f"config key {key}: {value!r} is not a valid {hint}")
    if origin is list:
        if not isinstance(value, list):
            raise UserError(f"config key {key}: expected a list, got {value!r}")
        return [_coerce(args[0], v, f"{key}[{i}]") for i, v in enumerate(value)]
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str):
        try:
            return float(value)  # YAML reads "5e-5" as a string
        except ValueError:
            pass
    if hint in (int, float, str, bool) and (
        not isinstance(value, hint) or (hint is int and isinstance(value, bool))
    ):
        raise UserError(f"config key {key}: expected {hint.__name__}, got {value!r}")
    return value


def load_config(path: Path | str, overrides: list[str] | None = None) -> Config:
    """Read a run config: includes, then overrides, then typed validation."""
    tree = apply_overrides(load_yaml(Path(path)), overrides or [])
    return from_dict(Config, tree)
