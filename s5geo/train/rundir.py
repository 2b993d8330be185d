"""Run folders, shared by ``s5geo train``, the MoE-MDF trainer and ``s5geo distill``.

A run lives in ``<train.out_dir>/<train.run_name>``, the name defaulting to
``<config stem>_seed<seed>``. Every run folder holds:

- ``config.yaml``: the resolved config of the run's first session. A later session whose
  resolved config differs (other overrides) keeps its own beside it as
  ``config.<unix time>.yaml``, so the folder records what each session ran;
- ``run.json``: one record per session (seed, library versions, what the session did);
- ``checkpoints/``: ``last.ckpt`` (what a run continues from) and ``best.ckpt`` (by the
  validation metric, see :func:`s5geo.train.trainer.make_trainer`).
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Any

from s5geo.config import TrainConfig
from s5geo.errors import UserError


def run_folder(t: TrainConfig, config_path: Path) -> Path:
    """``out_dir/run_name``, the name defaulting to ``<config stem>_seed<seed>``."""
    name = t.run_name or f"{Path(config_path).stem}_seed{t.seed}"
    return Path(t.out_dir) / name


def resume_checkpoint(checkpoints: Path, resume: Path | None) -> Path | None:
    """The checkpoint a fit continues from: ``resume`` when given (UserError when it is missing),
    else ``last.ckpt`` in ``checkpoints`` when an earlier session left one, else None."""
    if resume is not None:
        if not Path(resume).is_file():
            raise UserError(f"checkpoint to resume from not found: {resume}")
        return Path(resume)
    last = checkpoints / "last.ckpt"
    return last if last.is_file() else None


def chosen_checkpoint(checkpoints: Path) -> Path:
    """``best.ckpt`` (by the validation metric) when a validation ran, else ``last.ckpt``."""
    best = checkpoints / "best.ckpt"
    return best if best.is_file() else checkpoints / "last.ckpt"


def seed_run(t: TrainConfig) -> None:
    """Torch's intra-op threads (``train.threads``) and every random generator seeded
    (``train.seed``: Python, numpy, torch and the data-loader workers)."""
    import lightning as L
    import torch

    torch.set_num_threads(t.threads)
    L.seed_everything(t.seed, workers=True)


def write_config(run: Path, config: dict[str, Any]) -> None:
    """``config.yaml`` of a new run; a session of an existing run whose resolved ``config``
    differs writes ``config.<unix time>.yaml`` instead (the first session's stays)."""
    import yaml

    resolved = yaml.safe_dump(config, sort_keys=False)
    run.mkdir(parents=True, exist_ok=True)
    first = run / "config.yaml"
    if not first.is_file():
        first.write_text(resolved)
    elif first.read_text() != resolved:
        (run / f"config.{int(time.time())}.yaml").write_text(resolved)


def versions() -> dict[str, str]:
    """Library versions recorded with every session."""
    import lightning
    import timm
    import torch
    import torchgeo

    import s5geo

    return {
        "s5geo": s5geo.__version__,
        "torch": torch.__version__,
        "lightning": lightning.__version__,
        "timm": timm.__version__,
        "torchgeo": torchgeo.__version__,
        "python": platform.python_version(),
    }


def session_record(t: TrainConfig) -> dict[str, Any]:
    """The start of a session's ``run.json`` record: its seed and the library versions."""
    return {"seed": t.seed, "versions": versions()}


def append_session(run: Path, record: dict[str, Any]) -> None:
    """Add a session's record to ``run.json`` (a list, oldest first)."""
    path = run / "run.json"
    history = json.loads(path.read_text()) if path.is_file() else []
    path.write_text(json.dumps([*history, record], indent=2))
