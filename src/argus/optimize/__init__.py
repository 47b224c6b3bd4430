"""``argus models optimize``: a faster version of a model (int8 by ONNX Runtime's static
quantization, or OpenVINO bf16) registered as a new version with lineage and an agreement report
against its parent on held-out images. Serving never imports this package: a made version is an
ordinary package the server loads like any other."""

from __future__ import annotations

TARGETS = ("int8", "bf16")
"""What ``--to`` takes."""
