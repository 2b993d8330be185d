"""RS4P data curation (METHODS.md 1.1): score an unlabeled pool with a seed model, pick a diverse,
confident subset by cluster quotas, and write it as GeoPackage window footprints with a report.

``score`` (torch) turns windows into entropies and embeddings, ``select`` (numpy) clusters and
picks, ``pool`` enumerates and reads windows, ``manifest`` writes the selection and the report,
``run`` ties them together for ``s5geo curate``.
"""
