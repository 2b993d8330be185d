"""Training: Lightning modules (supervised, S4P, MoE-MDF), losses, the Trainer, run folders.

Holds the modules and their losses (``modules``, ``losses``, ``mdf``), the one Trainer set-up
(``trainer``) with its CSV log and progress lines (``csvlog``, ``progress``), checks before a run
(``preflight``), ``s5geo train`` (``runner``), checkpoint evaluation (``evaluate``, ``inference``)
and figures (``plots``). Training install.

May import: ``s5geo.models``, ``s5geo.data``, ``s5geo.metrics``, ``s5geo.config``,
``s5geo.errors``, ``s5geo.__version__``, ``s5geo.evaluate`` (split file names) and
``s5geo.infer.tiling`` (the window grid of sliding-window evaluation).
"""
