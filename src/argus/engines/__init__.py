"""Inference engines: ONNX Runtime by default, OpenVINO where chosen."""
