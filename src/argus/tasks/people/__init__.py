"""The ``people`` task: MediaPipe's BlazePose detector over the image and its tiles, then the
33-landmark pose network on each person found."""

from __future__ import annotations

from argus.tasks.people.landmarks import LANDMARK_NAMES
from argus.tasks.people.model import PeopleModel, PeopleOptions

__all__ = ["LANDMARK_NAMES", "PeopleModel", "PeopleOptions"]
