"""Tasks turn pixels into answers: each owns its preprocessing and output decoding."""

from __future__ import annotations

from argus.errors import BadPackage
from argus.packages import ModelPackage
from argus.runtime.onnx import RuntimeChoice
from argus.tasks.base import TaskModel
from argus.tasks.prepared import InputPreparer


def task_class(name: str) -> type[TaskModel]:
    from argus.tasks.classify import ClassifyModel
    from argus.tasks.detect import DetectModel
    from argus.tasks.faces import FacesModel

    tasks: dict[str, type[TaskModel]] = {
        c.task: c for c in (ClassifyModel, FacesModel, DetectModel)
    }
    if name not in tasks:
        raise BadPackage(f"task {name!r} has no implementation")
    return tasks[name]


__all__ = ["InputPreparer", "TaskModel", "load_task_model", "task_class"]


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
