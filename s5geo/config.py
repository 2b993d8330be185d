"""Typed run configurations read from YAML, with dotted ``key=value`` overrides.

A config file has three sections, ``model``, ``data`` and ``train``, each a dataclass below. A file
may start with ``defaults: [other.yaml, ...]`` (paths relative to the file): those files are merged
first, then this file's keys on top (mappings merge key by key, everything else is replaced).
Overrides such as ``train.steps=200`` are applied last; their values are parsed as YAML scalars.

Every key is checked against the dataclass fields: an unknown key, a value of the wrong type or a
value outside the field's domain (``metadata=POSITIVE`` and friends below: positive step counts,
probabilities in (0, 1], known choices) is a :class:`~s5geo.errors.UserError` that names the
dotted key and what it allows, so typos and impossible values fail before a run starts.

Only PyYAML and the standard library are needed here: the deployment install may read configs.
"""

from __future__ import annotations

import dataclasses
import os
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from s5geo.errors import UserError

T = TypeVar("T")

DEFAULT_DATA_ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "data"


TRAIN_METHODS = ("supervised", "s4p")
DATA_KINDS = ("image_folder", "raster", "aligned")  # aligned: MoE-MDF datasets only
PRECISIONS = ("32-true", "16-mixed", "bf16-mixed", "16-true", "bf16-true", "64-true",
              "32", "16", "bf16", "64")  # fmt: skip
ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps", "tpu")


@dataclass(frozen=True)
class Domain:
    """The values a config key allows: a test, and the words an error uses to say so."""

    text: str
    test: Callable[[Any], bool]

    def check(self, value: Any, key: str) -> None:
        """UserError naming ``key`` and the allowed values unless ``value`` passes (None does)."""
        if value is not None and not self.test(value):
            raise UserError(f"config key {key}: {value!r} is not allowed; it must be {self.text}")


def allowed(text: str, test: Callable[[Any], bool]) -> dict[str, Domain]:
    """Field metadata giving a key its :class:`Domain`, e.g. ``field(default=1, metadata=...)``."""
    return {"domain": Domain(text, test)}


def choice(*choices: str) -> Domain:
    """The domain of a key whose value must be one of ``choices``."""
    return Domain(f"one of {', '.join(choices)}", lambda v: v in choices)


def one_of(*choices: str) -> dict[str, Domain]:
    """Field metadata: the value must be one of ``choices``."""
    return {"domain": choice(*choices)}


def check_key(value: Any, metadata: dict[str, Domain], key: str) -> None:
    """Check ``value`` of config key ``key`` against field metadata such as :data:`POSITIVE`
    (for keys that :func:`from_dict` cannot check from their field)."""
    metadata["domain"].check(value, key)


def _is_regex(text: str) -> bool:
    """Whether ``text`` compiles as a Python regular expression."""
    try:
        re.compile(text)
    except re.error:
        return False
    return True


POSITIVE = allowed("> 0", lambda v: v > 0)
NON_NEGATIVE = allowed(">= 0", lambda v: v >= 0)
PROBABILITY = allowed("in (0, 1]", lambda v: 0 < v <= 1)
UNIT_INTERVAL = allowed("in [0, 1]", lambda v: 0 <= v <= 1)
DROP_RATE = allowed("in [0, 1)", lambda v: 0 <= v < 1)
SEED = allowed("in [0, 2**32 - 1]", lambda v: 0 <= v <= 2**32 - 1)
ALL_POSITIVE = allowed("a list of numbers > 0", lambda v: len(v) > 0 and min(v) > 0)
ALL_NON_NEGATIVE = allowed("a list of numbers >= 0", lambda v: all(x >= 0 for x in v))
BANDS = allowed("a list of band numbers >= 1", lambda v: len(v) > 0 and min(v) >= 1)
POSITIVE_RANGE = allowed(
    "[low, high] with 0 < low <= high", lambda v: len(v) == 2 and 0 < v[0] <= v[1]
)
FRACTION_RANGE = allowed(
    "[low, high] with 0 < low <= high <= 1", lambda v: len(v) == 2 and 0 < v[0] <= v[1] <= 1
)
REGEX = allowed("a valid regular expression", _is_regex)


def data_root() -> Path:
    """Root of the shared real data: ``$S5GEO_DATA`` or ``../shared/data`` next to the project."""
    env = os.environ.get("S5GEO_DATA")
    return Path(env) if env else DEFAULT_DATA_ROOT


@dataclass
class ModelConfig:
    """Which network to build (see :func:`s5geo.models.build_model`)."""

    name: str = "vit_b"  # vit_b/l/h, vit_small/tiny, or "timm:<name>" for any timm CNN backbone
    num_classes: int = field(default=16, metadata=POSITIVE)
    img_size: int = field(default=512, metadata=POSITIVE)  # training size: the ViT's pos. grid
    in_chans: int = field(default=3, metadata=POSITIVE)
    decoder_channels: int = field(default=256, metadata=POSITIVE)
    dropout: float = field(default=0.1, metadata=DROP_RATE)
    # ViT blocks feeding the pyramid; None: the variant's default
    taps: list[int] | None = field(default=None, metadata=ALL_NON_NEGATIVE)
    drop_path: float = field(default=0.0, metadata=DROP_RATE)
    grad_checkpointing: bool = False
    pretrained: str | None = None  # local MAE/timm-format ViT checkpoint (or timm weights tag)


@dataclass
class DataConfig:
    """A labelled dataset and its protocol: where it is, its classes, splits and crops.

    ``kind`` selects the reader: ``image_folder`` (JPEG/PNG pairs on a pixel grid, no
    georeferencing, e.g. Dubai), ``raster`` (GeoTIFF scenes with label rasters or vector labels,
    read through torchgeo) or ``aligned`` (scenes with pixel-aligned masks or vector labels, read
    on each scene's pixel grid; MoE-MDF). ``root`` may contain ``${S5GEO_DATA}``.
    """

    kind: str = field(default="image_folder", metadata=one_of(*DATA_KINDS))
    root: str = "${S5GEO_DATA}/dubai"
    splits_file: str = "splits.json"
    class_map: str = "dubai"  # a name in s5geo.datasets.classes
    images_dir: str = "images"
    masks_dir: str = "masks"
    image_glob: str = "*.tif"  # raster kind: scene files under images_dir
    label_glob: str = "*.tif"  # raster kind: label rasters under masks_dir
    # raster and aligned kinds: polygons (GeoPackage/Shapefile/GeoJSON) burned as class indices
    # instead of label rasters; may contain ${S5GEO_DATA}, other relative paths are from the
    # working folder (as unlabeled_selection), not from root
    vector_labels: str | None = None
    label_attribute: str = "class_id"  # attribute of vector_labels holding the class id
    # class id burned for every polygon of vector_labels (its label_attribute is then not read);
    # for layers without a class column, e.g. building footprints
    label_value: int | None = field(default=None, metadata=NON_NEGATIVE)
    # raster kind: random valid windows drawn per training source
    train_windows: int = field(default=1000, metadata=POSITIVE)
    split_labeled: str = "train_labeled"
    split_unlabeled: str = "train_unlabeled"
    # S4P: a selection.gpkg of ``s5geo curate`` read instead of split_unlabeled (relative paths are
    # from the working folder; may contain ${S5GEO_DATA}). None: the split_unlabeled images.
    unlabeled_selection: str | None = None
    split_val: str = "val"
    split_test: str = "test"
    crop_size: int = field(default=256, metadata=POSITIVE)
    scale_range: list[float] = field(default_factory=lambda: [0.5, 2.0], metadata=POSITIVE_RANGE)
    rotation: bool = False  # random 90-degree rotations in the weak view (paper option)
    input_scale: float = field(default=255.0, metadata=POSITIVE)
    mean: list[float] = field(default_factory=lambda: [0.485, 0.456, 0.406])
    std: list[float] = field(default_factory=lambda: [0.229, 0.224, 0.225], metadata=ALL_POSITIVE)
    bands: list[int] = field(default_factory=lambda: [1, 2, 3], metadata=BANDS)

    def resolved_root(self) -> Path:
        """``root`` with ``${S5GEO_DATA}`` replaced by :func:`data_root`."""
        return Path(self.root.replace("${S5GEO_DATA}", str(data_root())))

    def resolved_vector_labels(self) -> Path | None:
        """``vector_labels`` with ``${S5GEO_DATA}`` replaced, or None when unset."""
        if not self.vector_labels:
            return None
        return Path(self.vector_labels.replace("${S5GEO_DATA}", str(data_root())))

    def resolved_unlabeled_selection(self) -> Path | None:
        """``unlabeled_selection`` with ``${S5GEO_DATA}`` replaced, or None when unset."""
        if not self.unlabeled_selection:
            return None
        return Path(self.unlabeled_selection.replace("${S5GEO_DATA}", str(data_root())))


@dataclass
class TrainConfig:
    """How to train: method, schedule, optimiser, S4P options and the Trainer's resources."""

    # "supervised" or "s4p" (TRAIN_METHODS, checked by load_config: checkpoints of distillation
    # stages and MoE-MDF runs store their own method names here)
    method: str = "s4p"
    labeled_split: str | None = None  # None: data.split_labeled ("train" for fully supervised)
    steps: int = field(default=120_000, metadata=POSITIVE)
    # labeled images per step; S4P adds as many unlabeled (+ CutMix partner)
    batch_size: int = field(default=12, metadata=POSITIVE)
    lr: float = field(default=5e-5, metadata=POSITIVE)
    weight_decay: float = field(default=0.01, metadata=NON_NEGATIVE)
    backbone_lr_mult: float = field(default=1.0, metadata=NON_NEGATIVE)
    tau: float = field(default=0.95, metadata=PROBABILITY)  # pseudo-label confidence threshold
    cutmix_p: float = field(default=0.5, metadata=UNIT_INTERVAL)
    cutmix_area: list[float] = field(default_factory=lambda: [0.02, 0.4], metadata=FRACTION_RANGE)
    cutmix_aspect: list[float] = field(default_factory=lambda: [0.3, 3.3], metadata=POSITIVE_RANGE)
    ema_teacher: bool = False
    ema_decay: float = field(default=0.999, metadata=UNIT_INTERVAL)
    val_every: int = field(default=1000, metadata=POSITIVE)
    eval_tile: int = field(default=512, metadata=POSITIVE)  # sliding-window side for val/test
    seed: int = field(default=0, metadata=SEED)
    precision: str = field(default="32-true", metadata=one_of(*PRECISIONS))
    accelerator: str = field(default="auto", metadata=one_of(*ACCELERATORS))
    devices: int = field(default=1, metadata=POSITIVE)
    num_nodes: int = field(default=1, metadata=POSITIVE)
    strategy: str = "auto"
    num_workers: int = field(default=2, metadata=NON_NEGATIVE)
    threads: int = field(default=2, metadata=POSITIVE)
    out_dir: str = "runs"
    run_name: str | None = None
    # stop (with a checkpoint) after this wall time
    max_minutes: float | None = field(default=None, metadata=POSITIVE)
    checkpoint_every: int = field(default=100, metadata=POSITIVE)


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
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file not found: {path}")
    raw = _parse_yaml(path) or {}
    if not isinstance(raw, dict):
        raise UserError(f"{path}: a config must be a mapping of sections")
    includes = raw.pop("defaults", [])
    if isinstance(includes, str):
        includes = [includes]
    if not isinstance(includes, list) or not all(isinstance(i, str) for i in includes):
        raise UserError(f"{path}: defaults must be a list of YAML file paths")
    merged: dict[str, Any] = {}
    for include in includes:
        merged = merge(merged, load_yaml(path.parent / include))
    return merge(merged, raw)


def _parse_yaml(path: Path) -> Any:
    """The YAML document in ``path``; a UserError of one line saying where it is malformed."""
    import yaml

    try:
        return yaml.safe_load(path.read_text())
    except UnicodeDecodeError:
        raise UserError(f"{path}: not a YAML text file") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.context_mark or exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        what = "; ".join(part for part in (exc.context, exc.problem) if part)
        raise UserError(f"{path}: invalid YAML{where}: {what}") from None
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: invalid YAML: {' '.join(str(exc).split())}") from None


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
        domain = fields[key].metadata.get("domain")
        if domain is not None:
            domain.check(kwargs[key], f"{prefix}{key}")
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
    """Read a run config: includes, then overrides, then typed validation of every value."""
    tree = apply_overrides(load_yaml(Path(path)), overrides or [])
    cfg = from_dict(Config, tree)
    choice(*TRAIN_METHODS).check(cfg.train.method, "train.method")
    return cfg
