"""Distillation recipes: values outside their domain are refused while loading, naming the key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from s5geo.distill.config import load_distill_config
from s5geo.errors import UserError

RECIPE = Path(__file__).resolve().parents[2] / "configs" / "distill" / "sskd_dubai_cpu.yaml"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("distill.method=sskt", "distill.method: 'sskt' is not allowed; it must be one of sskd"),
        ("distill.sskd.transfer.steps=0", "distill.sskd.transfer.steps: 0 is not allowed"),
        ("distill.kd.lr=-1", "distill.kd.lr: -1.0 is not allowed; it must be > 0"),
        ("distill.kd.batch_size=0", "distill.kd.batch_size: 0 is not allowed"),
        ("distill.kd.temperature=0", "distill.kd.temperature: 0.0 is not allowed"),
        ("distill.kd.labeled.kl=-1", "distill.kd.labeled.kl: -1.0 is not allowed; it must be >= 0"),
        ("distill.contrast.tau_end=0", "distill.contrast.tau_end: 0.0 is not allowed"),
        ("distill.mckd.cross_stages=0", "distill.mckd.cross_stages: 0 is not allowed"),
        ("distill.mckd.group_regex=(Tile", "it must be a valid regular expression"),
        ("train.threads=0", "config key train.threads: 0 is not allowed; it must be > 0"),
    ],
)
def test_values_outside_their_domain_are_refused(override: str, message: str) -> None:
    with pytest.raises(UserError, match=re.escape(message)):
        load_distill_config(RECIPE, [override])
