"""``who`` as a job: the job's options carry the gallery, the gallery is checked when the job is
submitted, a worker answers with names, and the job's record holds names, not vectors."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from argus.contracts import AskOptions
from argus.errors import BadInput, NotFound
from argus.galleries.enrol import enrol_photos
from argus.jobs import open_queue
from argus.jobs.submit import submit_job
from argus.jobs.types import JobPolicy
from argus.records.query import find_records
from argus.server import local_core
from argus.settings import Settings
from tests.conftest import copy_home
from tests.jobs.test_http_jobs import drain


def test_a_who_job_names_the_faces(
    pulled_home: Path, tmp_path: Path, people_photos: dict[str, bytes]
) -> None:
    settings = Settings(home=copy_home(pulled_home, tmp_path / "home"))

    async def submit() -> list[str]:
        core = local_core(settings)
        queue = open_queue(settings, core.engine)
        try:
            core.gallery_store.create("staff", actor="test")
            await enrol_photos(core.ask, core.gallery_store, "staff", "Barack Obama",
                               [("obama2.jpg", people_photos["obama2"])], actor="test")
            with pytest.raises(BadInput, match="gallery=NAME"):
                await submit_job(core, queue, "who", people_photos["obama"])
            with pytest.raises(NotFound, match="no gallery named 'ghosts'"):
                await submit_job(core, queue, "who", people_photos["obama"],
                                 options=AskOptions(gallery="ghosts"))
            ids = []
            for name in ("obama3", "biden"):
                job, _ = await submit_job(core, queue, "who", people_photos[name],
                                          options=AskOptions(gallery="staff", record=True))
                ids.append(job.id)
            return ids
        finally:
            await core.close()

    obama, biden = asyncio.run(submit())
    stats = drain(settings, JobPolicy())
    assert stats["done"] == 2
    queue = open_queue(settings)
    answer = queue.get(obama).answer
    assert answer is not None and answer["answer"]["faces"][0]["name"] == "Barack Obama"
    other = queue.get(biden).answer
    assert other is not None and other["answer"]["faces"][0]["name"] is None
    assert queue.get(obama).options["gallery"] == "staff"  # type: ignore[index]
    records = find_records(queue.engine, question="who")
    assert len(records) == 2 and "embedding" not in json.dumps(records)
    queue.engine.dispose()
