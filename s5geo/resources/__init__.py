"""Files shipped inside the package: the bundled default model ``default.onnx``.

Its model card is docs/DEFAULT_MODEL.md; ``s5geo.infer.default_model_path`` finds it. No code,
no imports.
"""
