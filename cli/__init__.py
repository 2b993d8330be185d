"""The ``s5geo`` command (typer), installed as ``s5geo.cli``: a thin layer that parses, calls the
library and shows progress.

One module per command, each with a ``register(app)`` function; ``main`` assembles them and turns
errors into one ``error:`` line and an exit status. May import any ``s5geo`` package; nothing
imports ``s5geo.cli``. Training-side packages are imported inside the command functions, so the
deployment install can run ``predict``, ``fit``, ``info`` and ``evaluate MODEL.onnx`` without
torch.
"""
