"""Distillation losses: CE, Dice and temperature KL on (pseudo-)labels, and the instance-aware
pixel contrastive loss of SSKD (docs/methods.md, SSKD and MCKD).

Soft labels are stored as per-pixel log-probabilities (or logits) ``[B, K, H, W]``; the teacher's
distribution at temperature ``T`` is ``softmax(soft / T)``, which equals the softened teacher
logits. ``valid`` masks padding (and nodata); ``ignore_index`` in hard targets is ignored.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def masked_mean(per_pixel: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean of ``per_pixel`` ``[B, H, W]`` over ``valid`` pixels (0 when there are none)."""
    return (per_pixel * valid).sum() / valid.sum().clamp(min=1)


def kd_kl(
    logits: torch.Tensor, soft: torch.Tensor, valid: torch.Tensor, temperature: float
) -> torch.Tensor:
    """``T^2 KL(softmax(soft/T) || softmax(logits/T))`` per pixel, averaged over ``valid``.

    The ``T^2`` factor keeps the gradient scale independent of ``T`` (Hinton et al. 2015).
    """
    t = temperature
    log_q = F.log_softmax(soft.float() / t, dim=1)
    log_p = F.log_softmax(logits / t, dim=1)
    per_pixel = (log_q.exp() * (log_q - log_p)).sum(1)
    return t * t * masked_mean(per_pixel, valid.float())


def cross_entropy(logits: torch.Tensor, target: torch.Tensor, ignore_index: int) -> torch.Tensor:
    """Pixel CE against hard targets; 0 (not NaN) when every pixel is ignored."""
    keep = target != ignore_index
    if not keep.any():
        return logits.sum() * 0.0
    return F.cross_entropy(logits, target, ignore_index=ignore_index)


def dice_loss(
    logits: torch.Tensor, target: torch.Tensor, ignore_index: int, smooth: float = 1.0
) -> torch.Tensor:
    """Soft multi-class Dice loss ``1 - mean_k 2|P_k T_k| / (|P_k| + |T_k|)`` over kept pixels.

    Every class counts equally, which is why MCKD adds it: it counters class imbalance.
    """
    k = logits.shape[1]
    keep = (target != ignore_index).unsqueeze(1).float()
    probs = logits.softmax(1) * keep
    onehot = F.one_hot(target.clamp(0, k - 1), k).permute(0, 3, 1, 2).float() * keep
    inter = (probs * onehot).sum((0, 2, 3))
    denom = probs.sum((0, 2, 3)) + onehot.sum((0, 2, 3))
    return 1 - ((2 * inter + smooth) / (denom + smooth)).mean()


def weighted_terms(
    logits: torch.Tensor,
    hard: torch.Tensor,
    soft: torch.Tensor | None,
    valid: torch.Tensor,
    ce: float,
    dice: float,
    kl: float,
    temperature: float,
    ignore_index: int,
) -> dict[str, torch.Tensor]:
    """The non-zero terms ``ce*CE + dice*Dice + kl*T^2 KL`` (each unweighted, by name).

    ``hard`` already carries ``ignore_index`` outside ``valid``. KL needs ``soft``.
    """
    terms: dict[str, torch.Tensor] = {}
    if ce:
        terms["ce"] = cross_entropy(logits, hard, ignore_index)
    if dice:
        terms["dice"] = dice_loss(logits, hard, ignore_index)
    if kl:
        if soft is None:
            raise ValueError("a KL term needs soft labels")
        terms["kl"] = kd_kl(logits, soft, valid, temperature)
    return terms


def annealed_temperature(progress: float, start: float = 0.3, end: float = 0.07) -> float:
    """InfoNCE temperature annealed linearly from ``start`` to ``end`` over training."""
    p = min(max(progress, 0.0), 1.0)
    return start + (end - start) * p


def connected_regions(labels: torch.Tensor, max_iter: int | None = None) -> torch.Tensor:
    """Instance ids ``[B, H, W]``: 4-connected regions of equal class in ``labels`` ``[B, H, W]``.

    Label propagation with pointer jumping: every pixel starts with its own index, takes the
    largest id among same-class 4-neighbours, then the id its id points at (twice), until nothing
    changes; each region ends with one id (the largest index inside it). Ids are unique within an
    image, not across images. Written in torch because no installed library labels a batch of
    multi-class maps (kornia's connected_components is binary and propagation-only); pointer
    jumping makes it 2.7-4x faster than propagation alone on 64 px teacher maps (12-25 ms for a
    batch of 8, 1 thread; docs/DISTILL.md), where it runs every distillation step.
    """
    b, h, w = labels.shape
    ids = torch.arange(h * w, device=labels.device).view(1, h, w).expand(b, h, w).clone()
    cls = F.pad(labels.unsqueeze(1).float(), (1, 1, 1, 1), value=-1.0)[:, 0]
    neighbours = [(0, 1), (2, 1), (1, 0), (1, 2)]  # up, down, left, right (offsets into padding)
    same = [cls[:, dy : dy + h, dx : dx + w] == labels for dy, dx in neighbours]
    for _ in range(max_iter or h * w):
        padded = F.pad(ids.unsqueeze(1), (1, 1, 1, 1), value=-1)[:, 0]
        new = ids
        for (dy, dx), s in zip(neighbours, same, strict=True):
            new = torch.where(s, torch.maximum(new, padded[:, dy : dy + h, dx : dx + w]), new)
        for _ in range(2):  # an id is a pixel of the same region: take that pixel's id
            flat = new.view(b, h * w)
            new = flat.gather(1, flat).view(b, h, w)
        if torch.equal(new, ids):
            break
        ids = new
    return ids


def negative_weights(
    probs_a: torch.Tensor,
    inst_a: torch.Tensor,
    probs_n: torch.Tensor,
    inst_n: torch.Tensor,
    eps: float,
) -> torch.Tensor:
    """Sampling weights ``[A, N]``: ``max(0, 1 - <y_a, y_n>) + eps``.

    ``y = [instance one-hot || class probabilities]``, so ``<y_a, y_n>`` is ``[same instance] +
    <p_a, p_n>``; ``inst`` are batch-global instance ids. Same-instance pixels get weight ``eps``.
    """
    same = (inst_a.unsqueeze(1) == inst_n.unsqueeze(0)).float()
    dot = same + probs_a @ probs_n.T
    return (1 - dot).clamp(min=0) + eps


class PixelContrastLoss(nn.Module):
    """Instance-aware pixel contrastive loss (SSKD, docs/methods.md, SSKD).

    A 1x1-conv MLP projects decoder features to unit-norm embeddings. Anchors are subsampled
    valid pixels of the weak view; the positive is the same location in the photometric-only
    strong view; ``negatives`` negatives per anchor are drawn from pixels of the *other* images
    of the batch (or any other pixel with ``same_image=True``) with probability proportional to
    :func:`negative_weights`. The strong branch (positives and negatives) carries no gradient.
    InfoNCE with temperature ``tau`` (annealed by the caller, :func:`annealed_temperature`).
    """

    def __init__(
        self,
        in_channels: int,
        proj_dim: int = 64,
        negatives: int = 200,
        anchors: int = 256,
        pool: int = 4096,
        eps: float = 1e-3,
        same_image: bool = False,
    ) -> None:
        super().__init__()
        self.proj = nn.Sequential(
            nn.Conv2d(in_channels, in_channels, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(in_channels, proj_dim, 1),
        )
        self.negatives = negatives
        self.anchors = anchors
        self.pool = pool
        self.eps = eps
        self.same_image = same_image

    def embed(self, features: torch.Tensor) -> torch.Tensor:
        """Unit-norm embeddings ``[B, D, H, W]``."""
        return F.normalize(self.proj(features), dim=1)

    def forward(
        self,
        weak: torch.Tensor,
        strong: torch.Tensor,
        probs: torch.Tensor,
        valid: torch.Tensor,
        tau: float,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """InfoNCE over anchors of ``weak`` features ``[B, C, h, w]``.

        ``strong``: features of the strong view (same geometry); ``probs``: teacher class
        probabilities ``[B, K, H, W]``; ``valid`` ``[B, H, W]``. Both are resized to ``h x w``.
        """
        b, _, h, w = weak.shape
        p = F.interpolate(probs.float(), size=(h, w), mode="bilinear", align_corners=False)
        ok = F.interpolate(valid.float().unsqueeze(1), size=(h, w), mode="nearest")[:, 0] > 0
        inst = connected_regions(p.argmax(1))
        inst = inst + torch.arange(b, device=inst.device).view(b, 1, 1) * h * w  # batch-global
        image = torch.arange(b, device=inst.device).view(b, 1, 1).expand(b, h, w)

        z_w = self.embed(weak).permute(0, 2, 3, 1)[ok]
        with torch.no_grad():
            z_s = self.embed(strong).permute(0, 2, 3, 1)[ok]
        flat_p, flat_inst, flat_img = p.permute(0, 2, 3, 1)[ok], inst[ok], image[ok]
        if z_w.shape[0] < 2:
            return weak.sum() * 0.0
        a_idx, neg = self.select(flat_p, flat_inst, flat_img, generator)
        if a_idx.numel() == 0:
            return weak.sum() * 0.0
        anchor = z_w[a_idx]
        l_pos = (anchor * z_s[a_idx]).sum(-1, keepdim=True)
        l_neg = torch.einsum("ad,ard->ar", anchor, z_s[neg])
        logits = torch.cat([l_pos, l_neg], dim=1) / tau
        target = torch.zeros(logits.shape[0], dtype=torch.long, device=logits.device)
        return F.cross_entropy(logits, target)

    def select(
        self,
        probs: torch.Tensor,
        inst: torch.Tensor,
        image: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Anchor indices ``[A]`` and negative indices ``[A, R]`` into the flat valid pixels.

        ``probs`` ``[N, K]``, batch-global instance ids ``inst`` ``[N]`` and image index ``image``
        ``[N]``. Anchors whose every candidate has weight 0 are dropped.
        """
        n = probs.shape[0]
        a_idx = torch.randperm(n, generator=generator)[: self.anchors].to(probs.device)
        pool_idx = torch.randperm(n, generator=generator)[: self.pool].to(probs.device)
        weights = negative_weights(
            probs[a_idx], inst[a_idx], probs[pool_idx], inst[pool_idx], self.eps
        )
        if self.same_image:
            weights = weights * (a_idx.unsqueeze(1) != pool_idx.unsqueeze(0))
        else:
            weights = weights * (image[a_idx].unsqueeze(1) != image[pool_idx].unsqueeze(0))
        usable = weights.sum(1) > 0
        a_idx, weights = a_idx[usable], weights[usable]
        if a_idx.numel() == 0:
            return a_idx, a_idx.view(0, self.negatives)
        picks = torch.multinomial(weights, self.negatives, True, generator=generator)
        return a_idx, pool_idx[picks]
