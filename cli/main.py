"""Entry point of the ``s5geo`` command.

Each command lives in its own module with a ``register(app)`` function; this module assembles them
and turns :class:`s5geo.errors.UserError` into one ``error:`` line and exit status 2.
"""

from __future__ import annotations

import importlib
import signal
import sys
from types import FrameType
from typing import NoReturn

import typer

from s5geo.errors import Cancelled, UserError

app = typer.Typer(
    name="s5geo",
    help="Semi-supervised land-cover mapping: from georeferenced imagery to GIS layers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Command modules, registered in this order. Training-side modules import torch only inside their
# command functions, so `s5geo predict` stays torch-free.
_COMMAND_MODULES = ("predict", "info", "train", "evaluate", "export", "distill", "curate")

for _name in _COMMAND_MODULES:
    importlib.import_module(f"s5geo.cli.{_name}").register(app)


def _interrupt_on_signals() -> None:
    """Ctrl-C and kill (SIGTERM) raise KeyboardInterrupt, so partial outputs are cleaned up.

    SIGINT is reset explicitly because a process started in the background by a shell inherits
    it ignored.
    """

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, interrupt)


# The click exceptions of the click that typer runs on (typer 0.29 vendors its own copy, older
# typers use click itself): found through typer's public BadParameter, whatever the version.
_clicks = importlib.import_module(typer.BadParameter.__module__)
_ABORT = (typer.Abort, getattr(_clicks, "Abort", typer.Abort))

# Top-level modules of the training install (``pip install 's5geo[train]'``): a command that
# needs one of them in a deployment install gets one line saying how to install it.
TRAINING_MODULES = frozenset(
    {"torch", "torchvision", "lightning", "timm", "torchgeo", "kornia", "torchmetrics", "onnx",
     "onnxscript", "segmentation_models_pytorch", "matplotlib", "sklearn", "yaml"}
)  # fmt: skip


def _fail(message: str, status: int = 2) -> NoReturn:
    print(f"error: {' '.join(message.split())}", file=sys.stderr)
    sys.exit(status)


def run() -> None:
    """Console-script entry point: user errors exit 2 with one line, interruption exits 130.

    typer runs non-standalone so that usage errors (a missing option, an unknown one, a bad
    value) reach this function and become one ``error:`` line like every other user error,
    instead of click's framed multi-line message.
    """
    _interrupt_on_signals()
    try:
        status = app(standalone_mode=False)
    except UserError as exc:
        _fail(str(exc))
    except (Cancelled, *_ABORT):
        _fail("cancelled; no output was written", 130)
    except _clicks.NoArgsIsHelpError as exc:  # plain `s5geo`: the help, as a request
        print(exc.ctx.get_help() if exc.ctx else exc.format_message())
        sys.exit(0)
    except _clicks.UsageError as exc:
        hint = f" (see {exc.ctx.command_path} --help)" if exc.ctx else ""
        _fail(f"{exc.format_message()}{hint}")
    except _clicks.ClickException as exc:
        _fail(exc.format_message(), exc.exit_code or 2)
    except ModuleNotFoundError as exc:
        root = (exc.name or "").split(".")[0]
        if root not in TRAINING_MODULES:
            raise
        command = next((a for a in sys.argv[1:] if not a.startswith("-")), "this command")
        _fail(
            f"s5geo {command} needs the training install, which lacks {root}: "
            "pip install 's5geo[train]'"
        )
    if status == 130:
        _fail("interrupted; no output was written", 130)
    sys.exit(status or 0)


if __name__ == "__main__":
    run()
