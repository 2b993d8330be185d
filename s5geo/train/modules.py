"""Lightning modules: the supervised baseline and S4P (FixMatch) semi-supervised training.

The module owns the step; the Trainer owns loops, precision, checkpointing and DDP. Both modules
share the network wrapper (input normalisation inside the module, so batches stay in 0..1), AdamW
with a per-step cosine schedule to 0, and whole-image validation accumulating a confusion matrix
(torchmetrics, so it is summed across DDP processes) that :mod:`s5geo.metrics` scores. Validation
scales images like ``s5geo evaluate`` on a checkpoint (``s5geo.data.augment.to_unit_range``).
"""

from __future__ import annotations

import copy
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torchmetrics.classification import MulticlassConfusionMatrix

from s5geo.config import Config, from_dict
from s5geo.data.augment import apply_cutmix, cutmix_boxes, strong_photometric, to_unit_range
from s5geo.metrics import scores
from s5geo.models import build_model
from s5geo.train.inference import predict_probs
from s5geo.train.losses import unsupervised_loss


class SupervisedModule(L.LightningModule):
    """Cross-entropy on labeled weak views (ignore index from the class map)."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, config: dict[str, Any], ignore_index: int = 255) -> None:
        super().__init__()
        self.save_hyperparameters()  # plain dicts only: checkpoints load with weights_only=True
        self.cfg: Config = from_dict(Config, config)
        self.ignore_index = ignore_index
        self.net = build_model(self.cfg.model)
        mean = torch.tensor(self.cfg.data.mean).view(1, -1, 1, 1)
        std = torch.tensor(self.cfg.data.std).view(1, -1, 1, 1)
        self.register_buffer("mean", mean, persistent=False)
        self.register_buffer("std", std, persistent=False)
        self.confmat = MulticlassConfusionMatrix(
            self.cfg.model.num_classes, ignore_index=ignore_index
        )

    def normalise(self, image: torch.Tensor) -> torch.Tensor:
        """0..1 images -> standardised network input."""
        return (image - self.mean) / self.std

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.net(self.normalise(image))

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        logits = self(batch["image"])
        loss = F.cross_entropy(logits, batch["mask"], ignore_index=self.ignore_index)
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def configure_optimizers(self) -> Any:
        t = self.cfg.train
        backbone = list(self.net.backbone.parameters())
        ids = {id(p) for p in backbone}
        rest = [p for p in self.net.parameters() if id(p) not in ids]
        optimizer = torch.optim.AdamW(
            [{"params": backbone, "lr": t.lr * t.backbone_lr_mult}, {"params": rest, "lr": t.lr}],
            weight_decay=t.weight_decay,
        )
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=t.steps, eta_min=0)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self.eval_batch(batch)

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self.eval_batch(batch)

    def eval_batch(self, batch: dict[str, torch.Tensor]) -> None:
        """Tiled prediction of each whole image, added to the confusion matrix.

        Images are brought to 0..1 once, as checkpoint evaluation does (:func:`to_unit_range`):
        raw uint8 images (image folders) are divided by ``data.input_scale``, float windows of
        raster scenes arrive scaled by their reader and are used as they are.
        """
        scale = self.cfg.data.input_scale
        for image, mask in zip(batch["image"], batch["mask"], strict=True):
            x = self.normalise(to_unit_range(image, scale).unsqueeze(0))[0]
            probs = predict_probs(
                self.net, x, self.cfg.model.num_classes, tile=self.cfg.train.eval_tile
            )
            self.confmat.update(probs.argmax(0), mask)

    def _log_scores(self, stage: str) -> None:
        result = scores(self.confmat.compute().cpu().numpy())
        self.confmat.reset()
        self.log(f"{stage}/miou", 100 * result["miou"], sync_dist=False)
        self.log(f"{stage}/oa", 100 * result["overall_accuracy"], sync_dist=False)

    def on_validation_epoch_end(self) -> None:
        self._log_scores("val")

    def on_test_epoch_end(self) -> None:
        self._log_scores("test")


class S4PModule(SupervisedModule):
    """FixMatch as S4P runs it (docs/methods.md).

    Pseudo-labels come from the same network in eval mode without gradient on the weak views of
    the unlabeled batch and its CutMix partner (or from an EMA copy when ``ema_teacher``). The
    strong view adds kornia photometric jitter to the weak one, then CutMix pastes a box of the
    partner's strong view; pseudo-labels, confidences and validity are mixed with the same box.
    Loss = (CE on labeled + confidence-masked CE on unlabeled, normalised by valid pixels) / 2.
    """

    def __init__(self, config: dict[str, Any], ignore_index: int = 255) -> None:
        super().__init__(config, ignore_index)
        self.strong = strong_photometric()
        self.teacher = copy.deepcopy(self.net) if self.cfg.train.ema_teacher else None
        if self.teacher is not None:
            self.teacher.requires_grad_(False)

    @torch.no_grad()
    def pseudo_label(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(confidence, class) per pixel from the teacher in eval mode."""
        teacher = self.teacher if self.teacher is not None else self.net
        was_training = teacher.training
        teacher.eval()
        probs = teacher(self.normalise(images)).softmax(1)
        teacher.train(was_training)
        confidence, label = probs.max(1)
        return confidence, label

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        t = self.cfg.train
        x_l, y_l = batch["image"], batch["mask"]
        u_w, m_w = batch["u_image"], batch["m_image"]
        b = u_w.shape[0]
        conf, pseudo = self.pseudo_label(torch.cat([u_w, m_w]))
        valid = torch.cat([batch["u_valid"], batch["m_valid"]])
        with torch.no_grad():
            strong = self.strong(torch.cat([u_w, m_w]))
        height, width = u_w.shape[-2:]
        boxes = cutmix_boxes(
            b,
            height,
            width,
            p=t.cutmix_p,
            area=(t.cutmix_area[0], t.cutmix_area[1]),
            aspect=(t.cutmix_aspect[0], t.cutmix_aspect[1]),
        ).to(self.device)
        u_s = apply_cutmix(boxes, strong[:b], strong[b:])
        u_pseudo = apply_cutmix(boxes, pseudo[:b], pseudo[b:])
        u_conf = apply_cutmix(boxes, conf[:b], conf[b:])
        u_valid = apply_cutmix(boxes, valid[:b], valid[b:])

        logits = self(torch.cat([x_l, u_s]))
        loss_s = F.cross_entropy(logits[: x_l.shape[0]], y_l, ignore_index=self.ignore_index)
        loss_u = unsupervised_loss(logits[x_l.shape[0] :], u_pseudo, u_conf, u_valid, t.tau)
        loss = (loss_s + loss_u) / 2
        confident = ((u_conf >= t.tau) & u_valid).sum() / u_valid.sum().clamp(min=1)
        self.log_dict(
            {"train/loss": loss, "train/loss_s": loss_s, "train/loss_u": loss_u,
             "train/confident": confident},
            prog_bar=True,
        )  # fmt: skip
        return loss

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self.teacher is None:
            return
        decay = self.cfg.train.ema_decay
        with torch.no_grad():
            for pt, ps in zip(self.teacher.parameters(), self.net.parameters(), strict=True):
                pt.lerp_(ps, 1 - decay)
            for bt, bs in zip(self.teacher.buffers(), self.net.buffers(), strict=True):
                bt.copy_(bs)


def module_for(cfg: Config, ignore_index: int) -> SupervisedModule:
    """The Lightning module of ``cfg.train.method``."""
    from s5geo.errors import UserError

    modules = {"supervised": SupervisedModule, "s4p": S4PModule}
    if cfg.train.method not in modules:
        raise UserError(f"unknown train.method {cfg.train.method!r}; known: {', '.join(modules)}")
    return modules[cfg.train.method](cfg.to_dict(), ignore_index)
