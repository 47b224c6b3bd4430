"""The shared contracts: options parsed once from whatever a transport carries, with the
reason for every refusal; the answer's JSON, schema and round trip."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from argus.contracts import Answer, AskOptions
from argus.errors import BadInput
from argus.server import in_process_app
from argus.settings import Settings


def test_options_from_strings() -> None:
    options = AskOptions.parse(
        {"top_k": "3", "conf": "0.25", "crops": "yes", "version": "2", "alias": "canary",
         "app": "shop", "record": "true", "unknown": "ignored"},
        source="http",
    )
    assert options == AskOptions(top_k=3, conf=0.25, crops=True, version=2, alias="canary",
                                 app="shop", record=True, source="http")
    assert options.params() == {"top_k": 3, "conf": 0.25, "crops": True}
    assert AskOptions.parse({}) == AskOptions()
    assert AskOptions.parse({"top_k": "", "conf": "", "crops": "0"}).params() == {}


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"top_k": "three"}, "top_k must be a whole number, not 'three'"),
        ({"top_k": "0"}, "top_k must be between 1 and 1000, not 0"),
        ({"top_k": "1001"}, "top_k must be between 1 and 1000, not 1001"),
        ({"top_k": "2.5"}, "top_k must be a whole number"),
        ({"version": "99999999999999999999999"}, "version must be between 0 and 2147483647"),
        ({"version": "-1"}, "version must be between 0"),
        ({"conf": "high"}, "conf must be a number between 0 and 1, not 'high'"),
        ({"conf": "1.5"}, "conf must be between 0 and 1, not 1.5"),
        ({"conf": "nan"}, "conf must be between 0 and 1, not nan"),
        ({"crops": "maybe"}, "crops must be true or false, not 'maybe'"),
        ({"alias": "a" * 201}, "alias is 201 characters long; at most 200"),
    ],
)
def test_bad_options_are_refused_with_the_reason(fields: dict[str, str], reason: str) -> None:
    with pytest.raises(BadInput) as caught:
        AskOptions.parse(fields)
    assert reason in caught.value.message


def test_the_transport_decides_where_a_question_came_from() -> None:
    options = AskOptions.parse({"source": "cli", "job_id": "j-9", "app": "query"},
                               source="http", app="header")
    assert (options.source, options.job_id, options.app) == ("http", None, "header")


def test_stored_and_query_forms_read_back_the_same() -> None:
    options = AskOptions(top_k=2, conf=0.4, crops=True, version=3, alias=None, app="kiosk")
    assert options.stored() == {"top_k": 2, "app": "kiosk", "version": 3, "crops": True,
                                "conf": 0.4}
    assert AskOptions.parse(options.stored()) == options
    assert options.query() == {"top_k": "2", "conf": "0.4", "version": "3", "crops": "true"}
    assert AskOptions.parse(options.query(), app="kiosk") == options


ANSWER: dict[str, Any] = {
    "question": "describe",
    "image": {"sha256": "ab" * 32, "width": 640, "height": 480},
    "models": [{"name": "efficientnet-lite0", "version": 1, "digest": "sha256:00"}],
    "answer": {"labels": {"labels": [{"label": "espresso", "index": 967, "score": 0.9}]},
               "faces": None},
    "timings_ms": {"decode": 1.5, "infer": 9.0, "total": 12.25},
    "steps": {
        "labels": {"ms": 10.0, "cached": False, "skipped": None, "start_ms": 0.1,
                   "end_ms": 10.1,
                   "model": {"name": "efficientnet-lite0", "version": 1, "digest": "sha256:00"}},
        "faces": {"ms": 0.0, "cached": False, "skipped": "when: false was false",
                  "start_ms": 10.2, "end_ms": 10.2},
    },
    "cached": False,
}


def test_answer_json_round_trip() -> None:
    answer = Answer.from_json(ANSWER)
    assert answer.to_json() == ANSWER  # a skipped step names no model, as before
    assert answer.model_pairs() == [("efficientnet-lite0", "1")]
    with pytest.raises(ValueError, match="timings_ms"):
        Answer.from_json({k: v for k, v in ANSWER.items() if k != "timings_ms"})


def test_the_answer_schema_is_in_the_openapi_document(tmp_path: Path) -> None:
    app = in_process_app(Settings(home=tmp_path, preload=False))
    doc = app.openapi()
    ok = doc["paths"]["/v1/questions/{question}"]["post"]["responses"]["200"]
    assert ok["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Answer"}
    schema = doc["components"]["schemas"]["Answer"]
    assert set(schema["required"]) == set(ANSWER)
