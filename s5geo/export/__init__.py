"""Model export: torch -> ONNX under the model-file contract, parity checks, quantization."""
