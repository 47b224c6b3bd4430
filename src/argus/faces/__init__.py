"""The ``faces`` question: MTCNN detection on ONNX Runtime, landmark alignment, drawing."""

from __future__ import annotations

from argus.faces.align import ARCFACE_112, align_face, face_template, similarity_transform
from argus.faces.cascade import MTCNN, Face, load_sessions, nms

__all__ = [
    "ARCFACE_112",
    "MTCNN",
    "Face",
    "align_face",
    "face_template",
    "load_sessions",
    "nms",
    "similarity_transform",
]
