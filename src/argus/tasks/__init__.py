"""Tasks turn pixels into answers: each owns its preprocessing and output decoding."""

from __future__ import annotations

from argus.engines import RuntimeChoice
from argus.errors import BadPackage
from argus.packages import ModelPackage
from argus.tasks.base import TaskModel


def load_task_model(
    package: ModelPackage, threads: int, choice: RuntimeChoice | None = None
) -> TaskModel:
    """Build the task implementation for a verified package (imports only what it needs)."""
    if package.task == "classify":
        from argus.tasks.classify import ClassifyModel

        return ClassifyModel(package, threads, choice)
    if package.task == "faces":
        from argus.tasks.faces import FacesModel

        return FacesModel(package, threads, choice)
    if package.task == "detect":
        from argus.tasks.detect import DetectModel

        return DetectModel(package, threads, choice)
    raise BadPackage(f"task {package.task!r} of package {package.name} has no implementation")
