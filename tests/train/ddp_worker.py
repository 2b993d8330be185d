"""One process of the two-process DDP check (run by test_ddp.py through torch.distributed.run).

Trains the S4P module for a few steps on synthetic images with Lightning's DDP strategy on CPU
(gloo), then saves this rank's initial and final parameters to OUT/rank<R>.pt for the test.
"""

import sys
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader

from s5geo.config import Config, DataConfig, ModelConfig, TrainConfig
from s5geo.data.views import ViewStream
from s5geo.train.modules import S4PModule


def synthetic(n: int, labeled: bool) -> list[dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(n)
    out = []
    for _ in range(n):
        sample = {"image": torch.randint(0, 256, (3, 48, 48), dtype=torch.uint8, generator=g)}
        if labeled:
            sample["mask"] = (sample["image"][0].long() * 5 // 256).clamp(max=4)
        out.append(sample)
    return out


def main(out: Path) -> None:
    torch.set_num_threads(1)
    L.seed_everything(0, workers=True)
    cfg = Config(
        model=ModelConfig(name="timm:resnet18", num_classes=5, img_size=32, decoder_channels=8),
        data=DataConfig(crop_size=32),
        train=TrainConfig(method="s4p", steps=3, batch_size=2, lr=1e-3, tau=0.5),
    )
    stream = ViewStream(synthetic(4, True), synthetic(4, False), 12, 32, (0.5, 2.0), False, 255)
    module = S4PModule(cfg.to_dict())
    init = {k: v.detach().clone() for k, v in module.net.named_parameters()}
    trainer = L.Trainer(
        accelerator="cpu", devices=2, strategy="ddp", max_steps=3, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
    )  # fmt: skip
    trainer.fit(module, DataLoader(stream, batch_size=2, shuffle=True))
    params = {k: v.detach().clone() for k, v in module.net.named_parameters()}
    state = {"init": init, "params": params, "step": trainer.global_step}
    torch.save(state, out / f"rank{trainer.global_rank}.pt")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
