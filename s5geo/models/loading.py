"""Networks from the checkpoints that ``s5geo train`` and ``s5geo distill`` write.

Every such checkpoint is a Lightning checkpoint whose hyper-parameters hold the resolved run
config (``hyper_parameters.config``, a plain mapping) and whose state dict holds the network
under ``net.``. This module is the one place that reads them: through
:func:`s5geo.models.checkpoint.load_torch_file` (weights-only, a one-line UserError for a file
that is missing, no PyTorch checkpoint, or holds pickled objects), then the network is rebuilt
from the stored config. MoE-MDF checkpoints hold an MDF config instead: one dataset's path of
them is rebuilt by :func:`s5geo.models.mdf.load_mdf_dataset_model`, from :func:`read_checkpoint`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from s5geo.config import Config, from_dict
from s5geo.errors import UserError
from s5geo.models import build_network
from s5geo.models.checkpoint import TRAINING_CHECKPOINT, load_torch_file


@dataclass(frozen=True)
class TrainingCheckpoint:
    """What an s5geo training checkpoint holds: the run config and the network's weights."""

    config: dict[str, Any]  # the resolved run config, as stored
    net: dict[str, torch.Tensor]  # the network's state dict (``net.`` prefix removed)


def read_checkpoint(
    path: Path, *, mmap: bool = False, expected: str = TRAINING_CHECKPOINT
) -> TrainingCheckpoint:
    """The config and network weights of a checkpoint of ``s5geo train`` or ``s5geo distill``.

    ``mmap`` maps the tensors instead of reading them (for callers that want the config only);
    ``expected`` says in the error for a file that is no PyTorch checkpoint what the caller takes.
    UserError when the file is not an s5geo training checkpoint.
    """
    ckpt = load_torch_file(Path(path), mmap=mmap, expected=expected)
    config = ckpt.get("hyper_parameters", {}).get("config") if isinstance(ckpt, dict) else None
    state = ckpt.get("state_dict") if isinstance(ckpt, dict) else None
    if not isinstance(config, dict) or not isinstance(state, dict):
        raise UserError(f"{path} is not an s5geo training checkpoint (no config inside)")
    net = {k[4:]: v for k, v in state.items() if k.startswith("net.")}
    return TrainingCheckpoint(config, net)


def stored_config(path: Path, *, expected: str = TRAINING_CHECKPOINT) -> dict[str, Any]:
    """The run config stored in a training checkpoint; its tensors are mapped, not read."""
    return read_checkpoint(path, mmap=True, expected=expected).config


def load_checkpoint_state(path: Path) -> dict[str, torch.Tensor]:
    """The network weights of a training checkpoint (to initialise another run's network)."""
    return read_checkpoint(path).net


def load_checkpoint_model(path: Path) -> tuple[nn.Module, Config]:
    """The network (eval mode) and run config of a single-dataset training checkpoint: any model
    a run config names (ViT and timm segmentors, ``smp:`` students). Nothing is downloaded: the
    config's ``model.pretrained`` is dropped, the checkpoint's weights replace it."""
    checkpoint = read_checkpoint(path)
    cfg = from_dict(Config, checkpoint.config)
    cfg.model.pretrained = None
    net = build_network(cfg.model)
    net.load_state_dict(checkpoint.net)
    return net.eval(), cfg
