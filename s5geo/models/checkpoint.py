"""Loading local MAE/timm-format ViT weights into :class:`~s5geo.models.vit.ViT`.

Accepts a plain state dict or one wrapped under ``model``/``state_dict``/``module``; strips common
prefixes (``module.``, ``backbone.``, ``encoder.``); drops what the dense model has no use for
(class token, final norm, classification head, MAE decoder, mask token); removes the class-token
slot of the position embedding and resamples its grid to the model's. Files are read with
``weights_only=True``: nothing is unpickled. A file that does not fit raises a UserError saying why.

:func:`load_torch_file` is how every s5geo checkpoint is read: weights-only, and a file that is no
PyTorch checkpoint, or one holding pickled objects, is a one-line UserError saying so (never a hint
to load it unsafely).
"""

from __future__ import annotations

import math
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch
from timm.layers import resample_abs_pos_embed

from s5geo.errors import UserError
from s5geo.models.vit import ViT

# torch.save writes a zip archive holding <name>/data.pkl; before PyTorch 1.6 a pickle starting
# with protocol 2 and a long integer (the magic number).
_LEGACY_HEAD = b"\x80\x02\x8a\n"
TRAINING_CHECKPOINT = "expected a .ckpt of s5geo train or s5geo distill"

_PREFIXES = ("module.", "backbone.", "encoder.", "model.")
_DROPPED = ("cls_token", "mask_token", "norm.", "fc_norm.", "head.", "decoder", "dist_token")


def is_torch_file(path: Path) -> bool:
    """Whether ``path`` is laid out as ``torch.save`` writes (zip with data.pkl, legacy pickle)."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            return any(n == "data.pkl" or n.endswith("/data.pkl") for n in archive.namelist())
    with open(path, "rb") as fh:
        return fh.read(len(_LEGACY_HEAD)) == _LEGACY_HEAD


def require_torch_file(path: Path, expected: str = TRAINING_CHECKPOINT) -> Path:
    """``path`` when it exists and is laid out as ``torch.save`` writes; a UserError saying what
    it is not otherwise (``expected``: what the caller takes). Reads a few bytes, loads nothing."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path}")
    if not is_torch_file(path):
        raise UserError(f"{path} is not a PyTorch checkpoint ({expected})")
    return path


def load_torch_file(path: Path, *, mmap: bool = False, expected: str = TRAINING_CHECKPOINT) -> Any:
    """The object in a ``torch.save`` file, loaded weights-only on the CPU.

    UserErrors: missing file; not a PyTorch checkpoint (``expected`` says what the caller takes);
    pickled objects other than tensors and plain containers, which are refused, not loaded.
    ``mmap`` maps tensors instead of reading them (zip files only).
    """
    path = require_torch_file(path, expected)
    try:
        return torch.load(
            path, map_location="cpu", weights_only=True, mmap=mmap and zipfile.is_zipfile(path)
        )
    except pickle.UnpicklingError:  # what weights-only loading raises for anything else
        raise UserError(
            f"{path} holds objects other than weights; s5geo refuses to unpickle it "
            "(not an s5geo checkpoint?)"
        ) from None
    except Exception as exc:  # a damaged or truncated file: say why in one line
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"cannot read checkpoint {path}: {reason}") from None


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a checkpoint file (``.pt``/``.pth``/``.ckpt``/``.safetensors``), unwrapped."""
    path = Path(path)
    obj: Any
    if path.suffix == ".safetensors":
        obj = _read_safetensors(path)
    else:
        obj = load_torch_file(path, expected="expected MAE/timm ViT weights")
    for key in ("model", "state_dict", "module"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise UserError(f"{path} holds no state dict of tensors")
    return obj


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a ``.safetensors`` file; UserError when it is unreadable."""
    from safetensors.torch import load_file

    if not path.is_file():
        raise UserError(f"checkpoint not found: {path}")
    try:
        return load_file(str(path))
    except Exception as exc:  # safetensors raises its own error types for damaged files
        raise UserError(f"cannot read weights {path}: {exc}") from None


def remap_vit_keys(state: dict[str, torch.Tensor], model: ViT) -> dict[str, torch.Tensor]:
    """MAE/timm ViT keys -> this ViT's keys; position embedding resampled to the model's grid."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        for prefix in _PREFIXES:
            if key.startswith(prefix):
                key = key[len(prefix) :]
        if key.startswith(_DROPPED):
            continue
        out[key] = value
    if "pos_embed" in out:
        pos = out["pos_embed"]
        n = pos.shape[1]
        side = math.isqrt(n)
        extra = 0 if side * side == n else n - math.isqrt(n - 1) ** 2
        old = math.isqrt(n - extra)
        if old * old != n - extra:
            raise UserError(f"position embedding of {n} tokens is not a square grid")
        out["pos_embed"] = resample_abs_pos_embed(
            pos, list(model.grid), [old, old], num_prefix_tokens=extra
        )[:, extra:]
    return out


def load_vit_weights(model: ViT, path: Path) -> None:
    """Load a local MAE/timm ViT checkpoint into ``model``; UserError when it does not fit."""
    state = remap_vit_keys(read_state_dict(path), model)
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    if missing:
        raise UserError(
            f"{path} does not fit this ViT: {len(missing)} missing weights, e.g. {missing[:3]}"
        )
    for key, tensor in own.items():
        if state[key].shape != tensor.shape:
            raise UserError(
                f"{path} does not fit this ViT: {key} has shape {tuple(state[key].shape)}, "
                f"the model expects {tuple(tensor.shape)} (wrong variant?)"
            )
    model.load_state_dict({k: state[k] for k in own})
