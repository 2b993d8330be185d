"""Named splits of image-folder datasets (a JSON file of split name -> image stems). No torch.

Shared by training (s5geo.data.image_folder) and ONNX evaluation (s5geo.evaluate), which belongs
to the deployment install.
"""

from __future__ import annotations

import json
from pathlib import Path

from s5geo.errors import UserError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff")


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
