"""Argus answers questions about images with versioned ONNX models."""

from __future__ import annotations

__version__ = "0.1.0"
