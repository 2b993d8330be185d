"""RS4P data curation (docs/methods.md, Curation): score an unlabeled pool with a seed model,
pick a diverse, confident subset by cluster quotas, and write it as GeoPackage window footprints
with a report.

``score`` (torch) turns windows into entropies and embeddings, ``select`` (numpy) clusters and
picks, ``pool`` enumerates and reads windows, ``manifest`` writes the selection and the report,
``run`` ties them together for ``s5geo curate``. Training install.

May import: ``s5geo.models`` (the seed checkpoint, through ``s5geo.models.loading``),
``s5geo.data``, ``s5geo.datasets``, ``s5geo.config`` and ``s5geo.errors``; never
``s5geo.train`` (``make lint`` checks it).
"""
