"""Training: Lightning modules (supervised, S4P, MoE-MDF), losses, the Trainer, run folders.

Holds the modules and their losses (``modules``, ``losses``, ``mdf``), the one Trainer set-up
(``trainer``) with its CSV log and progress lines (``csvlog``, ``progress``), run folders: resume,
seed, resolved config, session records (``rundir``), checks before a run (``preflight``),
``s5geo train`` (``runner``) and checkpoint evaluation (``evaluate``, ``inference``). The Trainer
set-up and the run folders serve ``s5geo distill`` too. Training install.

May import: ``s5geo.models``, ``s5geo.data`` and the deployment layers below them:
``s5geo.evaluate`` (split file names), ``s5geo.infer.tiling`` (the window grid of sliding-window
evaluation), ``s5geo.datasets``, ``s5geo.plots``, ``s5geo.metrics``, ``s5geo.config``,
``s5geo.errors`` and ``s5geo.__version__``. Never ``s5geo.distill``, ``s5geo.curate``,
``s5geo.export`` or ``s5geo.cli`` (``make lint`` checks it).
"""
