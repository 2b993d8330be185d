"""Which images (and labels) a split holds, for image-folder and raster datasets. No torch.

Shared by training (s5geo.data.image_folder, s5geo.data.raster) and ONNX evaluation
(s5geo.evaluate), which belongs to the deployment install.

A split is named in two ways:

- A bare name (``train``, ``val``): a list of image name stems in the JSON ``data.splits_file``
  (e.g. Dubai's ``splits.json``); an image and its mask are ``<images_dir>/<stem>.<suffix>`` and
  ``<masks_dir>/<stem>.<suffix>``.
- A split spec, ``key=value`` parts joined by ``;`` (a file must satisfy every part), or ``all``.
  It selects among the files that ``data.image_glob`` matches under ``data.images_dir``, so a
  benchmark is read in the layout it is distributed in, without a converted copy or a splits file:

  - ``ids=a,b``: images whose id is listed. The id is what the ``*`` wildcards of ``image_glob``
    matched, joined by ``/``: ``top_potsdam_*_RGB.tif`` gives ``2_10`` for
    ``top_potsdam_2_10_RGB.tif`` (``**/`` matches any folders and is not part of the id).
    Every listed id must exist.
  - ``dir=A,B``: images under the folder ``A`` or ``B`` of ``images_dir`` (LoveDA ``Train``).
  - ``list=train.txt``: images whose file name (or stem) is a line of that file under ``root``
    (OpenEarthMap). Listed names without an image are skipped, as the benchmark's own code does
    (its lists name the xBD images that are distributed separately).
  - ``json=NAME``: the list ``NAME`` of ``splits_file``, matched against ids and stems.

  The label of an image is the file that ``data.label_glob`` matches under ``data.masks_dir`` with
  the same id: ``top_potsdam_*_label.tif`` pairs ``top_potsdam_2_10_RGB.tif`` with
  ``top_potsdam_2_10_label.tif``; ``*/labels/*.tif`` pairs ``aachen/images/aachen_1.tif`` with
  ``aachen/labels/aachen_1.tif``.

When the root has no splits file, the bare names ``train``/``labeled``/``train_labeled``,
``unlabeled``/``train_unlabeled``, ``val`` and ``test`` stand for the config's ``split_labeled``,
``split_unlabeled``, ``split_val`` and ``split_test``, so ``s5geo evaluate --split test`` works
with a benchmark config.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from s5geo.errors import UserError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff")
SPEC_KEYS = ("ids", "dir", "list", "json")


def read_split(root: Path, splits_file: str, split: str) -> list[str]:
    """Image name stems of ``split`` in the splits JSON (a mapping of split name -> stems)."""
    path = root / splits_file
    if not path.is_file():
        raise UserError(f"splits file not found: {path}")
    splits = json.loads(path.read_text())
    names = splits.get(split)
    if not isinstance(names, list):
        known = [k for k, v in splits.items() if isinstance(v, list)]
        raise UserError(f"split {split!r} not in {path}; known: {', '.join(known)}")
    return [str(n) for n in names]


def find_image(folder: Path, stem: str) -> Path:
    """The file ``stem.<suffix>`` in ``folder`` for the first image suffix that exists."""
    for suffix in IMAGE_SUFFIXES:
        path = folder / f"{stem}{suffix}"
        if path.is_file():
            return path
    raise UserError(f"no image named {stem}.* in {folder}")


def is_split_spec(split: str) -> bool:
    """Whether ``split`` is a spec (``key=value;...`` or ``all``) rather than a splits-file name."""
    return "=" in split or split.strip() == "all"


@dataclass(frozen=True)
class SplitSpec:
    """The parsed parts of a split spec; None: no condition of that kind."""

    ids: tuple[str, ...] | None = None
    dirs: tuple[str, ...] | None = None
    lists: tuple[str, ...] | None = None
    json_name: str | None = None

    @classmethod
    def parse(cls, text: str) -> SplitSpec:
        parts: dict[str, tuple[str, ...]] = {}
        for part in filter(None, (p.strip() for p in text.split(";"))):
            if part == "all":
                continue
            key, sep, value = part.partition("=")
            key = key.strip()
            values = tuple(v.strip() for v in value.split(",") if v.strip())
            if not sep or key not in SPEC_KEYS or not values:
                raise UserError(
                    f"split {text!r}: expected 'all' or key=value parts joined by ';' with keys "
                    f"{', '.join(SPEC_KEYS)} (e.g. ids=2_13,2_14 or list=train.txt)"
                )
            if key in parts:
                raise UserError(f"split {text!r}: {key}= given twice")
            parts[key] = values
        json_names = parts.get("json")
        if json_names is not None and len(json_names) != 1:
            raise UserError(f"split {text!r}: json= takes one split name")
        return cls(
            ids=parts.get("ids"),
            dirs=tuple(d.strip("/") for d in parts["dir"]) if "dir" in parts else None,
            lists=parts.get("list"),
            json_name=json_names[0] if json_names else None,
        )


class SplitItem(NamedTuple):
    """One image of a split: its id, image file and label file (None when not asked for)."""

    id: str
    image: Path
    mask: Path | None


def glob_regex(pattern: str) -> re.Pattern[str]:
    """A regex for a relative path matched by ``pattern``; each ``*`` is a capturing group.

    Supported: ``*`` (within one path part), ``?`` and ``**/`` (any folders, not captured).
    """
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append(r"(?:[^/]+/)*")
            i += 3
        elif pattern[i] == "*":
            out.append(r"([^/]*)")
            i += 1
        elif pattern[i] == "?":
            out.append(r"[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out))


def match_files(folder: Path, pattern: str) -> dict[str, Path]:
    """Files under ``folder`` matching ``pattern``, keyed by their id (see the module doc)."""
    if "[" in pattern:
        raise UserError(f"pattern {pattern!r}: use *, ? and **/ only (no [...] classes)")
    regex = glob_regex(pattern)
    found: dict[str, Path] = {}
    for path in sorted(folder.glob(pattern)):
        if not path.is_file():
            continue
        m = regex.fullmatch(path.relative_to(folder).as_posix())
        if m is None:  # pragma: no cover - glob and regex agree for the supported syntax
            continue
        key = "/".join(m.groups()) if m.groups() else path.stem
        if key in found:
            raise UserError(
                f"{found[key]} and {path} both match {pattern!r} with id {key!r}; "
                "narrow data.image_glob/label_glob or data.images_dir/masks_dir"
            )
        found[key] = path
    return found


def _listed_names(root: Path, files: tuple[str, ...]) -> set[str]:
    names: set[str] = set()
    for name in files:
        path = root / name
        if not path.is_file():
            raise UserError(f"split list not found: {path}")
        for line in path.read_text().splitlines():
            entry = line.strip()
            if entry and not entry.startswith("#"):
                names.add(Path(entry).name)
                names.add(Path(entry).stem)
    return names


def select(
    images: dict[str, Path], folder: Path, spec: SplitSpec, root: Path, splits_file: str
) -> dict[str, Path]:
    """The images (``id -> path``) of ``images``, found under ``folder``, that ``spec`` keeps."""
    keep = dict(images)
    if spec.ids is not None:
        missing = [i for i in spec.ids if i not in keep]
        if missing:
            raise UserError(
                f"{len(missing)} listed image id(s) not found under {folder} (e.g. {missing[0]!r}; "
                f"found ids look like {next(iter(keep), 'nothing')!r})"
            )
        wanted = set(spec.ids)
        keep = {k: p for k, p in keep.items() if k in wanted}
    if spec.dirs is not None:
        prefixes = tuple(f"{d}/" for d in spec.dirs)
        keep = {
            k: p for k, p in keep.items() if p.relative_to(folder).as_posix().startswith(prefixes)
        }
    if spec.lists is not None:
        names = _listed_names(root, spec.lists)
        keep = {k: p for k, p in keep.items() if p.name in names}
    if spec.json_name is not None:
        names = set(read_split(root, splits_file, spec.json_name))
        keep = {k: p for k, p in keep.items() if k in names or p.stem in names}
    return keep


def resolve_split(data: Any, split: str) -> str:
    """``split``, or the config's split it names when the root has no splits file."""
    if is_split_spec(split) or (data.resolved_root() / data.splits_file).is_file():
        return split
    roles = {
        "train": data.split_labeled,
        "labeled": data.split_labeled,
        "train_labeled": data.split_labeled,
        "unlabeled": data.split_unlabeled,
        "train_unlabeled": data.split_unlabeled,
        "val": data.split_val,
        "test": data.split_test,
    }
    return str(roles.get(split, split))


def split_items(data: Any, split: str, with_masks: bool = True) -> list[SplitItem]:
    """The images of ``split`` of a data config (:class:`s5geo.config.DataConfig`), with their
    label files when ``with_masks``; UserError when a split is empty or a label is missing."""
    root = data.resolved_root()
    split = resolve_split(data, split)
    if not is_split_spec(split):
        stems = read_split(root, data.splits_file, split)
        if data.kind != "image_folder":  # raster scenes: stems of the files image_glob matches
            wanted = set(stems)
            scenes = sorted(p for p in (root / data.images_dir).glob(data.image_glob))
            return [SplitItem(p.stem, p, None) for p in scenes if p.stem in wanted]
        return [
            SplitItem(
                s,
                find_image(root / data.images_dir, s),
                find_image(root / data.masks_dir, s) if with_masks else None,
            )
            for s in stems
        ]
    folder = root / data.images_dir
    images = match_files(folder, data.image_glob)
    if not images:
        raise UserError(
            f"no image matches {folder / data.image_glob} (set S5GEO_DATA or data.root)"
        )
    chosen = select(images, folder, SplitSpec.parse(split), root, data.splits_file)
    if not chosen:
        raise UserError(f"split {split!r} selects none of the {len(images)} images under {folder}")
    if not with_masks:
        return [SplitItem(k, p, None) for k, p in chosen.items()]
    labels = match_files(root / data.masks_dir, data.label_glob)
    missing = [p for k, p in chosen.items() if k not in labels]
    if missing:
        raise UserError(
            f"{len(missing)} of the {len(chosen)} images of split {split!r} have no label matching "
            f"{root / data.masks_dir / data.label_glob} (e.g. {missing[0].name}); check "
            "data.masks_dir and data.label_glob, or whether the benchmark withholds these labels"
        )
    return [SplitItem(k, p, labels[k]) for k, p in chosen.items()]


def split_pairs(data: Any, split: str) -> list[tuple[Path, Path]]:
    """(image, label) paths of a labelled split, for evaluation."""
    return [(i.image, i.mask) for i in split_items(data, split) if i.mask is not None]
