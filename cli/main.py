"""Entry point of the ``s5geo`` command.

Each command lives in its own module with a ``register(app)`` function; this module assembles them
and turns :class:`s5geo.errors.UserError` into one ``error:`` line and exit status 2.
"""

from __future__ import annotations

import importlib
import signal
import sys
from types import FrameType

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


def run() -> None:
    """Console-script entry point: user errors exit 2 with one line, interruption exits 130.

    typer runs standalone, so usage errors get click's usual message and exit status 2, and
    KeyboardInterrupt becomes exit status 130; s5geo's own errors pass through it untouched.
    """
    _interrupt_on_signals()
    try:
        app()
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except Cancelled:
        print("error: cancelled; no output was written", file=sys.stderr)
        sys.exit(130)
    except SystemExit as exc:
        if exc.code == 130:
            print("error: interrupted; no output was written", file=sys.stderr)
        raise


if __name__ == "__main__":
    run()
