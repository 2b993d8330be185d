"""Plain ViT backbone for dense prediction (S4P, docs/methods.md).

Patch 16, no class token, an absolute position embedding for the training size (resampled on the fly
for other input sizes and when loading weights of another size), pre-norm timm ``Block``s with qkv
bias and no final norm. It returns the token maps of the tapped blocks as ``[B, C, H/16, W/16]``.
Parameter names follow timm/MAE (``patch_embed.proj``, ``pos_embed``, ``blocks.N``) so their
checkpoints load with little remapping.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

import torch
from timm.layers import resample_abs_pos_embed
from timm.models.vision_transformer import Block
from torch import nn
from torch.utils.checkpoint import checkpoint


@dataclass(frozen=True)
class ViTVariant:
    """Width, depth, heads and the four tapped blocks of one ViT size."""

    embed_dim: int
    depth: int
    num_heads: int
    taps: tuple[int, int, int, int]


VIT_VARIANTS = {
    "vit_tiny": ViTVariant(192, 12, 3, (3, 5, 7, 11)),
    "vit_small": ViTVariant(384, 12, 6, (3, 5, 7, 11)),
    "vit_b": ViTVariant(768, 12, 12, (3, 5, 7, 11)),
    "vit_l": ViTVariant(1024, 24, 16, (7, 11, 15, 23)),
    "vit_h": ViTVariant(1280, 32, 16, (15, 23, 27, 31)),
}


class PatchEmbed(nn.Module):
    """Non-overlapping 16x16 patches projected by a strided convolution (with bias)."""

    def __init__(self, in_chans: int, embed_dim: int, patch_size: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


class ViT(nn.Module):
    """ViT encoder returning the feature maps of ``taps`` (0-based block indices)."""

    def __init__(
        self,
        img_size: int = 512,
        patch_size: int = 16,
        in_chans: int = 3,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        taps: Sequence[int] = (3, 5, 7, 11),
        drop_path: float = 0.0,
        grad_checkpointing: bool = False,
    ) -> None:
        super().__init__()
        if any(t < 0 or t >= depth for t in taps):
            raise ValueError(f"taps {list(taps)} must lie in 0..{depth - 1}")
        self.patch_size = patch_size
        self.grid = (img_size // patch_size, img_size // patch_size)
        self.taps = tuple(taps)
        self.embed_dim = embed_dim
        self.grad_checkpointing = grad_checkpointing
        self.patch_embed = PatchEmbed(in_chans, embed_dim, patch_size)
        self.pos_embed = nn.Parameter(torch.zeros(1, self.grid[0] * self.grid[1], embed_dim))
        rates = [drop_path * i / max(depth - 1, 1) for i in range(depth)]
        norm = partial(nn.LayerNorm, eps=1e-6)
        self.blocks = nn.ModuleList(
            Block(embed_dim, num_heads, mlp_ratio, qkv_bias=True, drop_path=r, norm_layer=norm)  # type: ignore[arg-type]
            for r in rates
        )
        self._init_weights()

    @property
    def out_channels(self) -> list[int]:
        """Channels of each returned map."""
        return [self.embed_dim] * len(self.taps)

    def _init_weights(self) -> None:
        if self.pos_embed.is_meta:
            return
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        tokens, shape = patch_tokens(x, self.patch_embed, self.pos_embed, self.grid)
        outs = []
        for i, block in enumerate(self.blocks):
            if self.grad_checkpointing and self.training:
                tokens = checkpoint(block, tokens, use_reentrant=False)
            else:
                tokens = block(tokens)
            if i in self.taps:
                outs.append(tokens.transpose(1, 2).reshape(shape))
        return outs


def patch_tokens(
    x: torch.Tensor, patch_embed: nn.Module, pos_embed: torch.Tensor, grid: tuple[int, int]
) -> tuple[torch.Tensor, torch.Size]:
    """Patch tokens ``[B, HW, C]`` plus the position embedding (resampled from the training
    ``grid`` to the input's), and the shape ``[B, C, H, W]`` of the token map they fold back into.
    Shared by the dense ViT and the ViT-MoE."""
    x = patch_embed(x)
    h, w = x.shape[-2:]
    pos = pos_embed
    if (h, w) != grid:
        pos = resample_abs_pos_embed(pos, [h, w], list(grid), num_prefix_tokens=0)
    return x.flatten(2).transpose(1, 2) + pos, x.shape
