"""Model export: torch -> ONNX under the model-file contract, parity checks, quantization.

Holds the export with its parity check (``onnx_export``), the softmax tail (``probs``), the
standardisation moved into the graph (``standardize``), graph rewrites ONNX Runtime runs faster
(``fusions``), FP16 and INT8 versions (``quantize``) and their comparison with FP32
(``compare``), TensorRT engines (``tensorrt``) and ``s5geo export`` (``pipeline``). Training
install.

May import: ``s5geo.models`` (checkpoints, through ``s5geo.models.loading`` and
``s5geo.models.mdf``), ``s5geo.data``, ``s5geo.datasets``, ``s5geo.infer`` (to run the exported
files), ``s5geo.io``, ``s5geo.modelfile``, ``s5geo.config``, ``s5geo.errors`` and
``s5geo.__version__``; never ``s5geo.train`` (``make lint`` checks it).
"""
