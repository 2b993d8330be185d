"""Entry point of the ``s5geo`` command.

Each command lives in its own module with a ``register(app)`` function; this module assembles them
and turns :class:`s5geo.errors.UserError` into one ``error:`` line and exit status 2.
"""

from __future__ import annotations

import importlib
import sys

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
_COMMAND_MODULES = ("predict", "info", "train", "evaluate", "export", "distill")

for _name in _COMMAND_MODULES:
    try:
        _module = importlib.import_module(f"s5geo.cli.{_name}")
    except ModuleNotFoundError as exc:  # a command module not written yet
        if exc.name != f"s5geo.cli.{_name}":
            raise
        continue
    _module.register(app)


def run() -> None:
    """Console-script entry point: user errors exit 2 with one line, cancellation exits 130."""
    try:
        app(standalone_mode=False)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except Cancelled:
        print("error: cancelled; no output was written", file=sys.stderr)
        sys.exit(130)
    except KeyboardInterrupt:
        print("error: interrupted; no output was written", file=sys.stderr)
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        print("error: aborted", file=sys.stderr)
        sys.exit(130)
    except Exception as exc:  # click's usage errors carry their own exit code
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(2 if exc.exit_code == 2 else exc.exit_code)
        raise


if __name__ == "__main__":
    run()
