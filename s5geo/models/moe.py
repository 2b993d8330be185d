"""FFN-MoE ViT for multi-dataset fine-tuning (MoE-MDF, docs/methods.md).

In every transformer block the FFN becomes a shared ``fc1`` (C -> 4C) + GELU followed by two output
linears in parallel: a shared one (4C -> C-p) and one expert (4C -> p) per dataset, concatenated
shared-first back to C. Routing is by dataset id: a batch comes from one dataset and uses exactly
that dataset's expert (no learned router, no top-k, no balancing loss).

:class:`MoESegmentor` composes the shared ViT-MoE and feature pyramid with one UperNet decoder (and
classifier) per dataset. :func:`init_from_dense` splits a dense model's ``fc2`` by output rows
(first C-p -> shared, last p -> every expert) so that at step 0 the MoE model computes what the
dense model computes, for every dataset; :func:`dataset_path` merges one dataset's expert back into
``fc2`` and returns an ordinary dense :class:`~s5geo.models.segmentor.Segmentor` (same cost as the
dense model), which is what gets exported to ONNX.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import cast

import torch
import torch.nn.functional as F
from timm.models.vision_transformer import Block
from torch import nn
from torch.utils.checkpoint import checkpoint

from s5geo.models.pyramid import SimpleFeaturePyramid
from s5geo.models.segmentor import Segmentor
from s5geo.models.upernet import UperNetHead
from s5geo.models.vit import ViT, patch_tokens


class MoEMlp(nn.Module):
    """Shared fc1 + GELU, then shared (C-p) and per-dataset expert (p) output rows, concatenated.

    ``expert_dim = 0`` is the shared-backbone baseline: one shared 4C -> C linear and no experts.
    """

    def __init__(self, dim: int, hidden: int, num_datasets: int, expert_dim: int) -> None:
        super().__init__()
        if not 0 <= expert_dim < dim:
            raise ValueError(f"expert width p={expert_dim} must lie in 0..{dim - 1}")
        self.expert_dim = expert_dim
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.shared = nn.Linear(hidden, dim - expert_dim)
        self.experts = nn.ModuleList(
            nn.Linear(hidden, expert_dim) for _ in range(num_datasets if expert_dim else 0)
        )
        if not self.fc1.weight.is_meta:  # the dense ViT's init (meta: counting only)
            for m in self.modules():
                if isinstance(m, nn.Linear):
                    nn.init.trunc_normal_(m.weight, std=0.02)
                    nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor, dataset: int) -> torch.Tensor:
        h = self.act(self.fc1(x))
        if not self.expert_dim:
            return self.shared(h)
        expert: nn.Module = self.experts[dataset]
        return torch.cat([self.shared(h), expert(h)], dim=-1)


def _block_forward(block: Block, x: torch.Tensor, dataset: int) -> torch.Tensor:
    """timm ``Block.forward`` with the dataset id passed to the MoE FFN."""
    x = x + block.drop_path1(block.ls1(block.attn(block.norm1(x))))
    mlp = cast(MoEMlp, block.mlp)
    return x + block.drop_path2(block.ls2(mlp(block.norm2(x), dataset)))


class ViTMoE(nn.Module):
    """The ViT of :mod:`s5geo.models.vit` with every block's FFN replaced by :class:`MoEMlp`.

    Built from a (possibly meta-device) dense :class:`ViT`, whose patch embedding, position
    embedding, attention and norms it takes over; ``forward(x, dataset)`` returns the tapped maps.
    The dataset id is an argument, not module state, so several forwards with different experts
    can share one backward (and gradient checkpointing recomputes the right expert).
    """

    def __init__(self, vit: ViT, num_datasets: int, expert_dim: int) -> None:
        super().__init__()
        self.patch_embed = vit.patch_embed
        self.pos_embed = vit.pos_embed
        self.blocks = vit.blocks
        self.grid = vit.grid
        self.taps = vit.taps
        self.embed_dim = vit.embed_dim
        self.grad_checkpointing = vit.grad_checkpointing
        self.num_datasets = num_datasets
        self.expert_dim = expert_dim
        for block in self.blocks:
            fc1 = cast(nn.Linear, block.get_submodule("mlp.fc1"))
            moe = MoEMlp(vit.embed_dim, fc1.out_features, num_datasets, expert_dim)
            block.mlp = moe.to(fc1.weight.device)

    def mlps(self) -> list[MoEMlp]:
        """The MoE FFN of every block, in order."""
        return [cast(MoEMlp, block.get_submodule("mlp")) for block in self.blocks]

    @property
    def out_channels(self) -> list[int]:
        """Channels of each returned map."""
        return [self.embed_dim] * len(self.taps)

    def forward(self, x: torch.Tensor, dataset: int) -> list[torch.Tensor]:
        tokens, shape = patch_tokens(x, self.patch_embed, self.pos_embed, self.grid)
        outs = []
        for i, block in enumerate(self.blocks):
            if self.grad_checkpointing and self.training:
                tokens = checkpoint(_block_forward, block, tokens, dataset, use_reentrant=False)
            else:
                tokens = _block_forward(cast(Block, block), tokens, dataset)
            if i in self.taps:
                outs.append(tokens.transpose(1, 2).reshape(shape))
        return outs


class MoESegmentor(nn.Module):
    """Shared ViT-MoE + pyramid, one UperNet decoder and classifier per dataset.

    ``forward(x, dataset)`` gives that dataset's logits at the input size; one dataset's path costs
    what the dense model costs.
    """

    def __init__(
        self,
        backbone: ViTMoE,
        neck: SimpleFeaturePyramid,
        heads: Sequence[UperNetHead],
        names: Sequence[str],
    ) -> None:
        super().__init__()
        if len(heads) != len(names) or len(names) != backbone.num_datasets:
            raise ValueError("one head and one name per dataset expected")
        self.backbone = backbone
        self.neck = neck
        self.heads = nn.ModuleList(heads)
        self.names = list(names)

    def forward(self, x: torch.Tensor, dataset: int) -> torch.Tensor:
        head = cast(UperNetHead, self.heads[dataset])
        logits = head(self.neck(self.backbone(x, dataset)))
        return F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)


def build_moe_segmentor(
    dense: Segmentor,
    names: Sequence[str],
    class_counts: Sequence[int],
    expert_dim: int,
) -> MoESegmentor:
    """Turn a dense ViT segmentor into a MoE-MDF model for ``names`` (one class count each).

    The dense model's modules are taken over (not copied), so call this on a freshly built or
    loaded dense model. Decoders are copies of the dense decoder with a new classifier each; call
    :func:`init_from_dense` with the dense weights to make the experts reproduce it.
    """
    if not isinstance(dense.backbone, ViT) or not isinstance(dense.neck, SimpleFeaturePyramid):
        raise ValueError("MoE-MDF needs a ViT segmentor with a simple feature pyramid")
    if len(names) != len(class_counts):
        raise ValueError("one class count per dataset expected")
    heads = []
    for k in class_counts:
        head = copy.deepcopy(dense.head)
        old = head.classifier
        head.classifier = nn.Conv2d(old.in_channels, k, 1, device=old.weight.device)
        heads.append(head)
    backbone = ViTMoE(dense.backbone, len(names), expert_dim)
    return MoESegmentor(backbone, dense.neck, heads, names)


@torch.no_grad()
def init_from_dense(moe: MoESegmentor, dense: Segmentor, copy_classifiers: bool = False) -> None:
    """Load a dense model's weights into ``moe``, splitting each ``fc2`` by output rows.

    First C-p rows -> the shared linear, last p rows -> every expert; everything else is copied
    (decoders into every dataset's decoder). ``copy_classifiers`` also copies the dense classifier
    into every dataset head with the same class count (new classifiers are kept otherwise).
    """
    state = dense.state_dict()
    p = moe.backbone.expert_dim
    own = moe.state_dict()
    for key in own:
        parts = key.split(".")
        if parts[0] == "heads":
            source = "head." + ".".join(parts[2:])
            if parts[2] == "classifier" and not (
                copy_classifiers and state[source].shape == own[key].shape
            ):
                continue
        elif ".mlp.shared." in key or ".mlp.experts." in key:
            kind = parts[-1]  # weight or bias
            prefix = key[: key.index(".mlp.") + len(".mlp.")]
            fc2 = state[prefix + "fc2." + kind]
            rows = fc2[fc2.shape[0] - p :] if ".experts." in key else fc2[: fc2.shape[0] - p]
            own[key].copy_(rows)
            continue
        else:
            source = key
        if state[source].shape != own[key].shape:
            raise ValueError(
                f"{key}: dense {tuple(state[source].shape)} != {tuple(own[key].shape)}"
            )
        own[key].copy_(state[source])


@torch.no_grad()
def dataset_path(moe: MoESegmentor, dataset: int | str) -> Segmentor:
    """One dataset's path as an ordinary dense segmentor: ``fc2 = [shared; expert]`` per block.

    The result has exactly the dense model's structure and cost, is independent of ``moe`` (all
    weights copied) and is what :func:`s5geo.export.onnx_export.export_model` exports.
    """
    index = moe.names.index(dataset) if isinstance(dataset, str) else dataset
    src = moe.backbone
    proj = cast(nn.Conv2d, src.get_submodule("patch_embed.proj"))
    patch = proj.kernel_size[0]
    vit = ViT(
        img_size=src.grid[0] * patch,
        patch_size=patch,
        in_chans=proj.in_channels,
        embed_dim=src.embed_dim,
        depth=len(src.blocks),
        num_heads=cast(int, src.get_submodule("blocks.0.attn").num_heads),
        mlp_ratio=src.mlps()[0].fc1.out_features / src.embed_dim,
        taps=src.taps,
    )
    neck = copy.deepcopy(moe.neck)
    head = copy.deepcopy(moe.heads[index])
    dense = Segmentor(vit, neck, cast(UperNetHead, head))
    full = moe.state_dict()
    state = {}
    for key, value in full.items():
        if key.startswith("heads.") or ".mlp.experts." in key:
            continue
        if ".mlp.shared." in key:
            prefix, kind = key[: key.index(".mlp.") + len(".mlp.")], key.rsplit(".", 1)[1]
            parts = [value]
            if src.expert_dim:
                parts.append(full[f"{prefix}experts.{index}.{kind}"])
            state[prefix + "fc2." + kind] = torch.cat(parts, dim=0)
            continue
        state[key] = value
    state.update({f"head.{k}": v for k, v in head.state_dict().items()})
    dense.load_state_dict(state)
    return dense.eval()
