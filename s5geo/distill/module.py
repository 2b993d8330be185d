"""The Lightning module of every distillation stage: one network, the stage's weighted loss.

``J = sum_w labeled terms + sum_w pseudo-labeled terms + pxl * L_pxl`` (docs/methods.md), with
CE/Dice/KL weights per image kind from :class:`~s5geo.distill.config.StageConfig`. The network is
stored as ``net`` with the run :class:`~s5geo.config.Config` under ``hyper_parameters["config"]``,
exactly like ``s5geo train`` checkpoints, so :func:`s5geo.models.loading.load_checkpoint_model`
and ``s5geo export`` rebuild it; the contrastive projection lives outside ``net`` (``contrast.``).
Validation matches ``s5geo train``: whole images, tiled, confusion matrix scored by s5geo.metrics.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torchmetrics.classification import MulticlassConfusionMatrix

from s5geo.config import Config, from_dict
from s5geo.data.augment import strong_photometric, to_unit_range
from s5geo.distill.config import ContrastConfig, StageConfig, TermWeights
from s5geo.distill.losses import PixelContrastLoss, annealed_temperature, weighted_terms
from s5geo.distill.students import build_student, classifier_of
from s5geo.metrics import scores
from s5geo.train.inference import predict_probs


class DistillModule(L.LightningModule):
    """Trains ``net`` (a student, or the teacher during SSKD adaptation) on one stage's loss."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(
        self,
        config: dict[str, Any],
        stage: dict[str, Any],
        contrast: dict[str, Any],
        ignore_index: int = 255,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()  # plain dicts: checkpoints load with weights_only=True
        self.cfg: Config = from_dict(Config, config)
        self.stage: StageConfig = from_dict(StageConfig, stage)
        self.contrast_cfg: ContrastConfig = from_dict(ContrastConfig, contrast)
        self.ignore_index = ignore_index
        # Channels-last: oneDNN's convolutions run a student's training step (forward, backward
        # and the no-grad strong view) in 0.79x the time of the default layout on CPU (fpn_mnv3l,
        # 8 x 256 px, 1 thread; docs/DISTILL.md). Same numbers up to rounding.
        self.net = build_student(self.cfg.model).to(memory_format=torch.channels_last)
        self.register_buffer("mean", torch.tensor(self.cfg.data.mean).view(1, -1, 1, 1), False)
        self.register_buffer("std", torch.tensor(self.cfg.data.std).view(1, -1, 1, 1), False)
        self.confmat = MulticlassConfusionMatrix(
            self.cfg.model.num_classes, ignore_index=ignore_index
        )
        self._features: list[torch.Tensor] = []
        self.contrast: PixelContrastLoss | None = None
        if self.stage.pxl:
            classifier = classifier_of(self.net)
            classifier.register_forward_pre_hook(self._keep_features)
            c = self.contrast_cfg
            self.contrast = PixelContrastLoss(
                _in_channels(classifier), c.proj_dim, c.negatives, c.anchors, c.pool, c.eps,
                c.same_image,
            )  # fmt: skip
            self.strong = strong_photometric()

    def _keep_features(self, module: torch.nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        self._features.append(inputs[0])

    def normalise(self, image: torch.Tensor) -> torch.Tensor:
        """0..1 images -> standardised network input."""
        return (image - self.mean) / self.std

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.net(self.normalise(image).contiguous(memory_format=torch.channels_last))

    def _pseudo(self, soft: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """Hard pseudo-labels: the soft labels' argmax, ignore outside ``valid``."""
        hard = soft.argmax(1)
        return torch.where(valid, hard, torch.full_like(hard, self.ignore_index))

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        s = self.stage
        parts: list[tuple[str, TermWeights, torch.Tensor | None]] = []  # prefix, weights, mask
        if "image" in batch:
            parts.append(("", s.labeled, batch["mask"]))
        if "u_image" in batch and (s.unlabeled.active() or s.pxl):
            parts.append(("u_", s.unlabeled, None))
        images = torch.cat([batch[p + "image"] for p, _, _ in parts])
        self._features.clear()
        logits = self(images)
        logged: dict[str, torch.Tensor] = {}
        loss = logits.sum() * 0.0
        start = 0
        for prefix, weights, mask in parts:
            n = batch[prefix + "image"].shape[0]
            soft = batch.get(prefix + "soft")
            valid = batch[prefix + "valid"]
            hard = mask if mask is not None else self._pseudo(batch[prefix + "soft"], valid)
            terms = weighted_terms(
                logits[start : start + n], hard, soft, valid, weights.ce, weights.dice,
                weights.kl, s.temperature, self.ignore_index,
            )  # fmt: skip
            for name, value in terms.items():
                loss = loss + getattr(weights, name) * value
                logged[f"train/{'unlabeled' if prefix else 'labeled'}_{name}"] = value
            start += n
        if self.contrast is not None:
            pxl = self._pixel_contrast(images, parts, batch)
            loss = loss + s.pxl * pxl
            logged["train/pxl"] = pxl
        logged["train/loss"] = loss
        self.log_dict(logged, prog_bar=False)
        return loss

    def _pixel_contrast(
        self, images: torch.Tensor, parts: list[Any], batch: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        """L_pxl on the weak views just forwarded and their photometric-only strong views."""
        assert self.contrast is not None
        weak = self._features[-1]
        soft = torch.cat([batch[p + "soft"] for p, _, _ in parts]).float()
        valid = torch.cat([batch[p + "valid"] for p, _, _ in parts])
        with torch.no_grad():
            self._features.clear()
            self(self.strong(images))
            strong = self._features[-1]
        c = self.contrast_cfg
        tau = annealed_temperature(
            self.global_step / max(self.stage.steps, 1), c.tau_start, c.tau_end
        )
        return self.contrast(weak, strong, soft.softmax(1), valid, tau)

    def configure_optimizers(self) -> Any:
        params = list(self.net.parameters())
        if self.contrast is not None:
            params += list(self.contrast.parameters())
        optimizer = torch.optim.AdamW(
            params, lr=self.stage.lr, weight_decay=self.cfg.train.weight_decay
        )
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=max(self.stage.steps, 1)
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        for image, mask in zip(batch["image"], batch["mask"], strict=True):
            x = self.normalise(to_unit_range(image, self.cfg.data.input_scale).unsqueeze(0))[0]
            probs = predict_probs(
                self.net, x, self.cfg.model.num_classes, self.cfg.train.eval_tile,
                channels_last=True,
            )  # fmt: skip
            self.confmat.update(probs.argmax(0), mask)

    def on_validation_epoch_end(self) -> None:
        result = scores(self.confmat.compute().cpu().numpy())
        self.confmat.reset()
        self.log("val/miou", 100 * result["miou"])
        self.log("val/oa", 100 * result["overall_accuracy"])


def _in_channels(classifier: torch.nn.Module) -> int:
    """Input channels of a classifier (a conv, or an smp head whose first layer is one)."""
    first = classifier[0] if isinstance(classifier, torch.nn.Sequential) else classifier
    return int(first.in_channels)  # type: ignore[arg-type]
