"""Checks that run before a training run writes its folder or creates a Lightning Trainer.

What a user can get wrong in a recipe beyond its values (which :mod:`s5geo.config` checks while
loading) fails here with one :class:`~s5geo.errors.UserError`: a model name no builder knows, a
class count that does not match the class map, a data root or split that does not exist, a
checkpoint to resume from that cannot be read. So a refused run leaves no run folder behind, and
Lightning prints nothing before the error line.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from s5geo.config import Config, DataConfig, ModelConfig
from s5geo.errors import UserError

READERS = ("image_folder", "raster")  # the data kinds s5geo.data.module reads


def check_data(data: DataConfig, splits: Iterable[str], key: str = "data",
               kinds: tuple[str, ...] = READERS) -> None:  # fmt: skip
    """UserError unless ``data`` is of one of ``kinds``, its root exists and every split of
    ``splits`` names images (and, for image folders, their masks). ``key`` is the config key of
    ``data`` in the messages."""
    if data.kind not in kinds:
        raise UserError(
            f"config key {key}.kind: {data.kind!r} is not allowed here; "
            f"it must be one of {', '.join(kinds)}"
        )
    root = data.resolved_root()
    if not root.is_dir():
        raise UserError(f"data root not found: {root} (set S5GEO_DATA or {key}.root)")
    for split in dict.fromkeys(splits):
        _check_split(data, split)


def _check_split(data: DataConfig, split: str) -> None:
    """Resolve ``split`` of ``data`` as its reader will; UserError when it names nothing."""
    if data.kind == "aligned":
        from s5geo.data.aligned import aligned_split

        aligned_split(data, split, with_masks=False)
        return
    from s5geo.datasets.splits import split_items

    split_items(data, split, with_masks=data.kind == "image_folder")


def check_resume(resume: Path | None) -> None:
    """UserError unless ``resume`` is None or a readable Lightning checkpoint."""
    from s5geo.train.csvlog import checkpoint_step

    if resume is not None:
        checkpoint_step(resume)


def check_model(model: ModelConfig, data: DataConfig, *, smp: bool = False) -> None:
    """UserError unless a builder knows ``model.name`` (``smp``: distillation students too) and
    ``model.num_classes`` is the class count of ``data.class_map``."""
    from s5geo.datasets.classes import get_class_map
    from s5geo.models import check_model_name

    check_model_name(model.name, smp=smp)
    class_map = get_class_map(data.class_map)
    if class_map.num_classes != model.num_classes:
        raise UserError(
            f"model.num_classes is {model.num_classes} but class map {data.class_map!r} "
            f"has {class_map.num_classes} classes"
        )


def check_run(cfg: Config, resume: Path | None) -> None:
    """Everything ``s5geo train`` can refuse before it writes or starts anything."""
    check_model(cfg.model, cfg.data)
    t, d = cfg.train, cfg.data
    splits = [t.labeled_split or d.split_labeled, d.split_val, d.split_test]
    if t.method == "s4p" and not d.unlabeled_selection:
        splits.append(d.split_unlabeled)
    check_data(d, splits)
    check_resume(resume)
