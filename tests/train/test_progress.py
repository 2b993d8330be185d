"""A fit built by make_trainer reports its progress on stderr: steps, time left, val scores."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from s5geo.config import TrainConfig
from s5geo.train.trainer import make_trainer


class Tiny(L.LightningModule):
    """One linear layer; logs train/loss every step and a val/miou that rises with each check."""

    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Linear(4, 1)
        self.checks = 0

    def training_step(self, batch: list[torch.Tensor], idx: int) -> torch.Tensor:
        loss = torch.nn.functional.mse_loss(self.net(batch[0]), batch[1])
        self.log("train/loss", loss)
        return loss

    def validation_step(self, batch: list[torch.Tensor], idx: int) -> None:
        pass

    def on_validation_epoch_end(self) -> None:
        self.checks += 1
        self.log("val/miou", 10.0 * self.checks)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.01)


def _loader() -> DataLoader:
    return DataLoader(TensorDataset(torch.randn(256, 4), torch.randn(256, 1)), batch_size=2)


def _fit(run: Path, steps: int, resume: Path | None = None) -> None:
    t = TrainConfig(steps=steps, val_every=20, checkpoint_every=20, accelerator="cpu")
    trainer = make_trainer(run, t, steps=steps, resume=resume, distributed=False)
    trainer.fit(Tiny(), _loader(), _loader(), ckpt_path=resume)


def test_fit_reports_steps_time_left_and_val_scores(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _fit(tmp_path / "stage", 60)
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("stage:")]
    steps = [line for line in lines if "s/step" in line]
    # one line per twentieth of the run (every 3 steps here), the last at 100 % with no time left
    assert len(steps) == 20
    assert re.fullmatch(r"stage: step 3/60 \(5 %\), loss \d+\.\d{3}, \d+\.\d\d s/step, \d+ s left",
                        steps[0])  # fmt: skip
    assert steps[-1].startswith("stage: step 60/60 (100 %)") and "left" not in steps[-1]
    vals = [line for line in lines if "val/miou" in line]
    assert vals == [
        "stage: step 20/60, val/miou 10.00 (best this session 10.00)",
        "stage: step 40/60, val/miou 20.00 (best this session 20.00)",
        "stage: step 60/60, val/miou 30.00 (best this session 30.00)",
    ]


def test_a_resumed_fit_says_where_it_resumed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _fit(tmp_path / "stage", 40)
    capsys.readouterr()
    _fit(tmp_path / "stage", 60, resume=tmp_path / "stage" / "checkpoints" / "last.ckpt")
    err = capsys.readouterr().err
    assert "stage: resumed at step 40/60" in err
    assert "stage: step 42/60 (70 %)" in err


def test_fit_prints_no_lightning_advert_or_deprecation_noise(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        _fit(tmp_path / "stage", 6)
    out = capsys.readouterr()
    assert "litlogger" not in out.out + out.err + caplog.text
    assert not [w for w in caught if "LeafSpec" in str(w.message)]
