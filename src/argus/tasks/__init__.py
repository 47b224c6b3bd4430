"""Tasks turn pixels into answers: each owns its preprocessing and output decoding.

A task is one module here whose :class:`~argus.tasks.base.TaskModel` subclass declares its
name, its answer and its manifest fields; :data:`TASKS` is the one table of them, and everyone
else (package validation, question graphs, the CLI, the model service) asks it.
"""

from __future__ import annotations

from argus.engines import RuntimeChoice
from argus.errors import BadPackage
from argus.manifest import ModelPackage
from argus.tasks.base import InputPreparer, TaskModel
from argus.tasks.classify import ClassifyModel
from argus.tasks.detect import DetectModel
from argus.tasks.embed import EmbedModel
from argus.tasks.face_attributes import FaceAttributesModel
from argus.tasks.faces import FacesModel
from argus.tasks.people import PeopleModel
from argus.tasks.text import TextModel

TASKS: dict[str, type[TaskModel]] = {
    cls.task: cls
    for cls in (
        ClassifyModel,
        DetectModel,
        EmbedModel,
        FacesModel,
        PeopleModel,
        TextModel,
        FaceAttributesModel,
    )
}
#: The keys of the tasks' lists of answer items (labels, objects, faces, …).
ITEM_KEYS: tuple[str, ...] = tuple(
    dict.fromkeys(cls.answer_kind for cls in TASKS.values() if cls.item_fields)
)


def task_class(name: str) -> type[TaskModel]:
    """The task called ``name``; a :class:`BadPackage` naming the known ones if there is none."""
    try:
        return TASKS[name]
    except KeyError:
        raise BadPackage(f"unknown task {name!r}; known tasks: {', '.join(TASKS)}") from None


def load_task_model(
    package: ModelPackage, threads: int, choice: RuntimeChoice | None = None
) -> TaskModel:
    """Build the task implementation for a verified package."""
    return task_class(package.task)(package, threads, choice)


__all__ = ["ITEM_KEYS", "TASKS", "InputPreparer", "TaskModel", "load_task_model", "task_class"]
