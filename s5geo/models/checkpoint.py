"""Loading local MAE/timm-format ViT weights into :class:`~s5geo.models.vit.ViT`.

Accepts a plain state dict or one wrapped under ``model``/``state_dict``/``module``; strips common
prefixes (``module.``, ``backbone.``, ``encoder.``); drops what the dense model has no use for
(class token, final norm, classification head, MAE decoder, mask token); removes the class-token
slot of the position embedding and resamples its grid to the model's. Files are read with
``weights_only=True``: nothing is unpickled. A file that does not fit raises a UserError saying why.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from timm.layers import resample_abs_pos_embed

from s5geo.errors import UserError
from s5geo.models.vit import ViT

_PREFIXES = ("module.", "backbone.", "encoder.", "model.")
_DROPPED = ("cls_token", "mask_token", "norm.", "fc_norm.", "head.", "decoder", "dist_token")


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a checkpoint file (``.pt``/``.pth``/``.ckpt``/``.safetensors``), unwrapped."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            obj: object = load_file(str(path))
        else:
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unreadable, truncated, or pickled objects refused
        raise UserError(f"cannot read checkpoint {path}: {exc}") from None
    for key in ("model", "state_dict", "module"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise UserError(f"{path} holds no state dict of tensors")
    return obj


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
