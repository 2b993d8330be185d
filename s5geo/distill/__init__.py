"""Semi-supervised distillation of a teacher into compact students: SSKD, MCKD, plain KD.

Holds the recipes (``config``), the students (``students``), the losses (``losses``), soft
labels and training streams (``data``), the Lightning module of every stage (``module``), one
stage's fit (``stage``), the methods as sequences of stages (``pipelines``) and ``s5geo distill``
(``runner``). Methods: docs/methods.md (SSKD, MCKD); runs and results: docs/DISTILL.md. Training
install: torch is imported by the submodules.

May import: ``s5geo.train`` (the Trainer set-up, run folders, checks before a run and
sliding-window inference), ``s5geo.models`` (checkpoints, through ``s5geo.models.loading``),
``s5geo.data``, ``s5geo.datasets``, ``s5geo.plots``, ``s5geo.metrics``, ``s5geo.config`` and
``s5geo.errors``; nothing imports it but ``s5geo.cli`` (``make lint`` checks it).
"""
