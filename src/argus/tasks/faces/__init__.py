"""The ``faces`` task: MTCNN detection (P-Net, R-Net, O-Net) on the chosen engine, five
landmarks per face, and aligned crops."""

from __future__ import annotations

from argus.tasks.faces.align import ARCFACE_112, align_face, face_template, similarity_transform
from argus.tasks.faces.cascade import MTCNN, Face, load_sessions, nms
from argus.tasks.faces.model import FacesModel

__all__ = [
    "ARCFACE_112",
    "MTCNN",
    "Face",
    "FacesModel",
    "align_face",
    "face_template",
    "load_sessions",
    "nms",
    "similarity_transform",
]
