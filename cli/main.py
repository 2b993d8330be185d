"""Entry point of the ``s5geo`` command.

Each command lives in its own module with a ``register(app)`` function; this module assembles them
and turns :class:`s5geo.errors.UserError` into one ``error:`` line and exit status 2.
"""

from __future__ import annotations

import difflib
import importlib
import signal
import sys
from collections.abc import Sequence
from types import FrameType
from typing import NoReturn

import typer

from s5geo import __version__
from s5geo.errors import Cancelled, UserError, install_hint

app = typer.Typer(
    name="s5geo",
    help="Semi-supervised land-cover mapping: from georeferenced imagery to GIS layers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Command modules, registered in this order. Training-side modules import torch only inside their
# command functions, so `s5geo predict` stays torch-free.
_COMMAND_MODULES = ("predict", "fit", "info", "train", "evaluate", "export", "distill", "curate")

for _name in _COMMAND_MODULES:
    importlib.import_module(f"s5geo.cli.{_name}").register(app)


def _print_version(value: bool) -> None:
    if value:
        print(f"s5geo {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """Options of ``s5geo`` itself, before any command (``s5geo --version``)."""


# Signals that interrupted this run: the exit status says which, as shells do (128 + number).
_signalled: list[int] = []


def _interrupt_on_signals() -> None:
    """Ctrl-C and kill (SIGTERM) raise KeyboardInterrupt, so partial outputs are cleaned up.

    SIGINT is reset explicitly because a process started in the background by a shell inherits
    it ignored.
    """

    def interrupt(signum: int, frame: FrameType | None) -> None:
        _signalled.append(signum)
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, interrupt)


# The click exceptions of the click that typer runs on (typer 0.29 vendors its own copy, older
# typers use click itself): found through typer's public BadParameter, whatever the version.
_clicks = importlib.import_module(typer.BadParameter.__module__)
_ABORT = (typer.Abort, getattr(_clicks, "Abort", typer.Abort))

# Top-level modules of the training install (the ``train`` extra): a command that
# needs one of them in a deployment install gets one line saying how to install it.
TRAINING_MODULES = frozenset(
    {"torch", "torchvision", "lightning", "timm", "torchgeo", "kornia", "torchmetrics", "onnx",
     "onnxscript", "segmentation_models_pytorch", "matplotlib", "sklearn", "yaml"}
)  # fmt: skip


def _interrupted(message: str) -> NoReturn:
    """Exit after an interruption: status 143 (128 + 15) for SIGTERM, 130 for Ctrl-C."""
    if signal.SIGTERM in _signalled:
        _fail(f"{message} (terminated)", 128 + signal.SIGTERM)
    _fail(message, 130)


def _fail(message: str, status: int = 2) -> NoReturn:
    print(f"error: {' '.join(message.split())}", file=sys.stderr)
    sys.exit(status)


# How alike an unknown option and a real one must be (difflib's ratio, dashes left out) to be
# suggested: click's own cutoff counts the shared "--" and suggested --raster for --frobnicate.
SUGGEST_CUTOFF = 0.7


def _close_options(typed: str, options: Sequence[str]) -> list[str]:
    """Of the options click found like ``typed``, those that are close without the dashes."""
    words = {o.lstrip("-"): o for o in options}
    close = difflib.get_close_matches(typed.lstrip("-"), list(words), cutoff=SUGGEST_CUTOFF)
    return [words[w] for w in close]


def run() -> None:
    """Console-script entry point: user errors exit 2 with one line, Ctrl-C exits 130 and
    SIGTERM 143.

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
        _interrupted("cancelled; no output was written")
    except _clicks.NoArgsIsHelpError as exc:  # plain `s5geo`: the help, as a request
        print(exc.ctx.get_help() if exc.ctx else exc.format_message())
        sys.exit(0)
    except _clicks.UsageError as exc:
        if isinstance(exc, _clicks.NoSuchOption):
            exc.possibilities = _close_options(exc.option_name, exc.possibilities or ())
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
            + install_hint("train")
        )
    if status == 130:
        _interrupted("interrupted; no output was written")
    sys.exit(status or 0)


if __name__ == "__main__":
    run()
