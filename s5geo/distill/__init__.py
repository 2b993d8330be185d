"""Semi-supervised distillation of a teacher into compact students: SSKD, MCKD, plain KD.

See METHODS.md sections 2 and 3 and docs/DISTILL.md. Torch is imported by the submodules.
"""
