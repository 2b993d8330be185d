"""MoE-MDF multi-dataset fine-tuning (docs/methods.md): data module, Lightning module, run.

Each step draws one batch from every dataset (smaller datasets are cycled: every training stream
has ``steps x batch`` items and cycles its labelled set), runs one forward per dataset through the
shared backbone with that dataset's expert and decoder, sums the weighted losses of the datasets
whose ``start_step`` has been reached, and takes one backward and one AdamW step (lr 5e-5, wd
0.05, cosine to 0; optional layer-wise lr decay). Validation scores every dataset separately
(whole images, sliding windows) and the mean mIoU selects the checkpoint.

The run folder is laid out as every run's (:mod:`s5geo.train.rundir`: ``config.yaml``,
``run.json``, ``checkpoints/`` with ``best.ckpt`` by ``val/miou_mean``), with ``metrics.csv`` and
``test.json`` (per-dataset test mIoU, per-class IoU and accuracy of the best checkpoint, parameter
counts). Running the same command again resumes from ``checkpoints/last.ckpt`` (a finished run
only runs its test again).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, cast

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchmetrics.classification import MulticlassConfusionMatrix

from s5geo.config import (
    ALL_NON_NEGATIVE,
    DATA_KINDS,
    NON_NEGATIVE,
    POSITIVE,
    PROBABILITY,
    DataConfig,
    check_key,
    choice,
)
from s5geo.data.aligned import aligned_split
from s5geo.data.views import ViewStream
from s5geo.datasets.classes import class_map_for
from s5geo.errors import UserError
from s5geo.metrics import scores
from s5geo.models.mdf import (
    MDFConfig,
    MDFDataset,
    build_mdf_model,
    load_mdf_config,
    mdf_config_from_dict,
)
from s5geo.models.moe import MoESegmentor
from s5geo.models.vit import VIT_VARIANTS
from s5geo.train.inference import predict_probs


def build_mdf_source(cfg: DataConfig, split: str, for_training: bool = False) -> Dataset[Any]:
    """Labelled samples of one dataset's split: ``aligned`` pairs or any kind s5geo.data reads."""
    if cfg.kind == "aligned":
        return aligned_split(cfg, split)
    from s5geo.data.module import build_source

    return build_source(cfg, split, for_training=for_training)


class Routed(nn.Module):
    """One dataset's path of a MoE model as a plain ``module(x)`` (for sliding-window eval)."""

    def __init__(self, moe: MoESegmentor, dataset: int) -> None:
        super().__init__()
        self.moe = moe
        self.dataset = dataset

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.moe(x, self.dataset)


class MDFDataModule(L.LightningDataModule):
    """Per-dataset training streams (a dict: one batch of each per step) and eval loaders."""

    def __init__(self, cfg: MDFConfig) -> None:
        super().__init__()
        self.cfg = cfg

    def train_dataloader(self) -> dict[str, DataLoader[Any]]:
        t = self.cfg.train
        world = max(self.trainer.world_size, 1) if self.trainer else 1
        loaders = {}
        for name, spec in self.cfg.datasets.items():
            d = spec.data
            batch = spec.batch_size or t.batch_size
            stream = ViewStream(
                build_mdf_source(d, d.split_labeled, for_training=True),
                None,
                length=t.steps * batch * world,
                crop_size=d.crop_size,
                scale_range=(d.scale_range[0], d.scale_range[1]),
                rotation=d.rotation,
                ignore_index=class_map_for(d.class_map).ignore_index,
                input_scale=d.input_scale,
            )
            loaders[name] = DataLoader(
                stream,
                batch_size=batch,
                shuffle=True,
                num_workers=t.num_workers,
                persistent_workers=t.num_workers > 0,
                drop_last=True,
            )
        return loaders

    def _eval(self, attr: str) -> list[DataLoader[Any]]:
        workers = min(self.cfg.train.num_workers, 1)
        return [
            DataLoader(build_mdf_source(s.data, getattr(s.data, attr)), batch_size=1,
                       num_workers=workers)
            for s in self.cfg.datasets.values()
        ]  # fmt: skip

    def val_dataloader(self) -> list[DataLoader[Any]]:
        return self._eval("split_val")

    def test_dataloader(self) -> list[DataLoader[Any]]:
        return self._eval("split_test")


def layer_decay_groups(model: MoESegmentor, lr: float, decay: float | None) -> list[dict[str, Any]]:
    """AdamW parameter groups; with ``decay``, block i gets lr x decay^(depth - i), the embeddings
    lr x decay^(depth + 1), the pyramid and decoders lr (BEiT/mmseg layer-wise decay)."""
    if decay is None:
        return [{"params": [p for p in model.parameters() if p.requires_grad], "lr": lr}]
    depth = len(model.backbone.blocks)
    groups: dict[int, list[nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if name.startswith(("backbone.patch_embed.", "backbone.pos_embed")):
            layer = 0
        elif name.startswith("backbone.blocks."):
            layer = int(name.split(".")[2]) + 1
        else:
            layer = depth + 1
        groups.setdefault(layer, []).append(param)
    return [
        {"params": params, "lr": lr * decay ** (depth + 1 - layer)}
        for layer, params in sorted(groups.items())
    ]


class MDFModule(L.LightningModule):
    """The MoE-MDF network, the summed multi-dataset loss and per-dataset validation."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, config: dict[str, Any], load_weights: bool = True) -> None:
        super().__init__()
        self.save_hyperparameters()  # plain dicts only: checkpoints load with weights_only=True
        self.cfg: MDFConfig = mdf_config_from_dict(config)
        self.names = list(self.cfg.datasets)
        self.net = build_mdf_model(self.cfg, load_weights=load_weights)
        specs = list(self.cfg.datasets.values())
        self.register_buffer(
            "mean", torch.tensor([s.data.mean for s in specs]).view(len(specs), -1, 1, 1), False
        )
        self.register_buffer(
            "std", torch.tensor([s.data.std for s in specs]).view(len(specs), -1, 1, 1), False
        )
        self.class_maps = [class_map_for(s.data.class_map) for s in specs]
        # Per-class test IoU of each dataset (percent), filled by the test epoch.
        self.test_class_iou: dict[str, dict[str, float | None]] = {}
        # Plain tensors, not buffers: they come from the config, and checkpoints stay loadable
        # by runs without them.
        self.class_weights: list[torch.Tensor | None] = []
        for name, spec, k in zip(self.names, specs, self.cfg.class_counts(), strict=True):
            if spec.class_weights is not None and len(spec.class_weights) != k:
                raise UserError(
                    f"datasets.{name}.class_weights has {len(spec.class_weights)} values; "
                    f"the dataset has {k} classes"
                )
            self.class_weights.append(
                None if spec.class_weights is None else torch.tensor(spec.class_weights)
            )
        self.confmats = nn.ModuleList(
            MulticlassConfusionMatrix(k, ignore_index=cm.ignore_index)
            for k, cm in zip(self.cfg.class_counts(), self.class_maps, strict=True)
        )

    def normalise(self, image: torch.Tensor, dataset: int) -> torch.Tensor:
        """0..1 images of ``dataset`` -> that dataset's standardised network input."""
        return (image - self.mean[dataset]) / self.std[dataset]

    def forward(self, image: torch.Tensor, dataset: int) -> torch.Tensor:
        return self.net(self.normalise(image, dataset), dataset)

    def training_step(
        self, batch: dict[str, dict[str, torch.Tensor]], batch_idx: int
    ) -> torch.Tensor:
        total = torch.zeros((), device=self.device)
        logs = {}
        for i, (name, spec) in enumerate(self.cfg.datasets.items()):
            if self.global_step < spec.start_step or name not in batch:
                continue
            b = batch[name]
            logits = self(b["image"], i)
            weights = self.class_weights[i]
            loss = F.cross_entropy(
                logits,
                b["mask"],
                weight=None if weights is None else weights.to(logits),
                ignore_index=self.class_maps[i].ignore_index,
            )
            total = total + spec.weight * loss
            logs[f"train/loss_{name}"] = loss
        logs["train/loss"] = total
        self.log_dict(logs, prog_bar=False)
        return total

    def configure_optimizers(self) -> Any:
        t = self.cfg.train
        optimizer = torch.optim.AdamW(
            layer_decay_groups(self.net, t.lr, t.layer_decay), weight_decay=t.weight_decay
        )
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=t.steps, eta_min=0)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    def _eval_batch(self, batch: dict[str, torch.Tensor], dataset: int) -> None:
        spec = list(self.cfg.datasets.values())[dataset].data
        k = self.cfg.class_counts()[dataset]
        routed = Routed(self.net, dataset)
        for image, mask in zip(batch["image"], batch["mask"], strict=True):
            x = image.float() / spec.input_scale if image.dtype == torch.uint8 else image.float()
            x = self.normalise(x.unsqueeze(0), dataset)[0]
            probs = predict_probs(routed, x, k, tile=self.cfg.train.eval_tile)
            cast(MulticlassConfusionMatrix, self.confmats[dataset]).update(probs.argmax(0), mask)

    def validation_step(
        self, batch: dict[str, torch.Tensor], batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        self._eval_batch(batch, dataloader_idx)

    def test_step(
        self, batch: dict[str, torch.Tensor], batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        self._eval_batch(batch, dataloader_idx)

    def _log_scores(self, stage: str) -> None:
        mious = []
        for name, module, cmap in zip(self.names, self.confmats, self.class_maps, strict=True):
            confmat = cast(MulticlassConfusionMatrix, module)
            result = scores(confmat.compute().cpu().numpy())
            confmat.reset()
            if stage == "test":  # Lightning logs scalars only: test.json takes these from here
                self.test_class_iou[name] = {
                    c: round(100 * v, 2) if v == v else None  # NaN: class absent
                    for c, v in zip(cmap.names, result["iou"], strict=True)
                }
            miou = 100 * float(result["miou"])
            mious.append(miou)
            self.log(f"{stage}/{name}/miou", miou, add_dataloader_idx=False)
            self.log(
                f"{stage}/{name}/oa", 100 * float(result["overall_accuracy"]),
                add_dataloader_idx=False,
            )  # fmt: skip
        self.log(f"{stage}/miou_mean", sum(mious) / len(mious), add_dataloader_idx=False)

    def on_validation_epoch_end(self) -> None:
        self._log_scores("val")

    def on_test_epoch_end(self) -> None:
        self._log_scores("test")


def check_mdf_config(cfg: MDFConfig) -> None:
    """Refuse configs that cannot train before any data is read.

    Adds to what loading checks: MoE-MDF's own keys (method, expert width, layer decay, each
    dataset's weight, start step, batch size and class weights) and a ViT model.
    """
    t = cfg.train
    choice("mdf").check(t.method, "train.method")
    check_key(t.weight_decay, NON_NEGATIVE, "train.weight_decay")
    check_key(t.layer_decay, PROBABILITY, "train.layer_decay")
    check_key(cfg.moe.expert_dim, NON_NEGATIVE, "moe.expert_dim")
    if cfg.model.name not in VIT_VARIANTS:
        raise UserError(
            f"config key model.name: {cfg.model.name!r} is not allowed; MoE-MDF needs a ViT: "
            f"one of {', '.join(VIT_VARIANTS)}"
        )
    if not any(s.start_step == 0 for s in cfg.datasets.values()):
        raise UserError("at least one dataset must start at step 0 (datasets.<name>.start_step)")
    for name, spec in cfg.datasets.items():
        _check_dataset(cfg, name, spec)


def _check_dataset(cfg: MDFConfig, name: str, spec: MDFDataset) -> None:
    """The values of ``datasets.<name>`` that loading cannot check on its own."""
    key = f"datasets.{name}"
    check_key(spec.weight, NON_NEGATIVE, f"{key}.weight")
    check_key(spec.batch_size, POSITIVE, f"{key}.batch_size")
    check_key(spec.num_classes, POSITIVE, f"{key}.num_classes")
    check_key(spec.class_weights, ALL_NON_NEGATIVE, f"{key}.class_weights")
    if not 0 <= spec.start_step < cfg.train.steps:
        raise UserError(
            f"config key {key}.start_step: {spec.start_step} is not allowed; it must be in "
            f"[0, train.steps) = [0, {cfg.train.steps})"
        )
    if len(spec.data.mean) != cfg.model.in_chans or len(spec.data.std) != cfg.model.in_chans:
        raise UserError(f"{key}.data: mean/std need {cfg.model.in_chans} values (model.in_chans)")


def check_mdf_data(cfg: MDFConfig) -> None:
    """UserError unless every dataset's root and train/val/test splits exist."""
    from s5geo.train.preflight import check_data

    for name, spec in cfg.datasets.items():
        d = spec.data
        check_data(d, [d.split_labeled, d.split_val, d.split_test], key=f"datasets.{name}.data",
                   kinds=DATA_KINDS)  # fmt: skip


def train_mdf(config_path: Path | str, overrides: list[str], resume: Path | None = None) -> Path:
    """Train the MoE-MDF config into its run folder (resuming when possible); return the folder."""
    from s5geo.models.mdf import count
    from s5geo.train.preflight import check_resume
    from s5geo.train.rundir import (
        append_session,
        chosen_checkpoint,
        resume_checkpoint,
        run_folder,
        seed_run,
        session_record,
        write_config,
    )
    from s5geo.train.trainer import make_trainer

    config_path = Path(config_path)
    cfg = load_mdf_config(config_path, overrides)
    check_mdf_config(cfg)
    t = cfg.train
    run = run_folder(t, config_path)
    ckpt_dir = run / "checkpoints"
    resume = resume_checkpoint(ckpt_dir, resume)
    check_mdf_data(cfg)
    check_resume(resume)
    seed_run(t)
    module = MDFModule(cfg.to_dict(), load_weights=resume is None)
    write_config(run, cfg.to_dict())
    data = MDFDataModule(cfg)
    trainer = make_trainer(run, t, steps=t.steps, resume=resume, monitor="val/miou_mean")
    started = time.time()
    record: dict[str, Any] = {
        **session_record(t), "resumed_from": None if resume is None else str(resume)
    }  # fmt: skip
    trainer.fit(module, datamodule=data, ckpt_path=resume, weights_only=True)
    record["fit_seconds"] = round(time.time() - started, 1)
    record["steps"] = trainer.global_step
    chosen = chosen_checkpoint(ckpt_dir)
    results = trainer.test(module, datamodule=data, ckpt_path=str(chosen), weights_only=True)
    if trainer.is_global_zero:
        metrics = {k: round(float(v), 2) for r in results for k, v in r.items()}
        test = {
            "checkpoint": str(chosen),
            "miou": {n: metrics.get(f"test/{n}/miou") for n in cfg.datasets},
            "miou_mean": metrics.get("test/miou_mean"),
            "overall_accuracy": {n: metrics.get(f"test/{n}/oa") for n in cfg.datasets},
            "iou": module.test_class_iou,
            "parameters": count(module.net),
            "expert_dim": cfg.moe.expert_dim,
        }
        (run / "test.json").write_text(json.dumps(test, indent=2))
        record.update(test_miou_mean=test["miou_mean"], checkpoint=str(chosen))
        append_session(run, record)
    return run
