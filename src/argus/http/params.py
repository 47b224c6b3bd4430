"""The path and query parameters REST routes share, typed once: the schema each one shows in
the OpenAPI document is the rule the server applies to it (a value outside it is a 422 before
any handler runs), so a client that follows the document is never refused for its shape."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Query
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from argus.contracts import MAX_VERSION
from argus.graphs.spec import QUESTION_NAME
from argus.models.versions import ALIAS_PATTERN, NAME_LENGTH, NAME_PATTERN

#: A KServe version: a number or an alias (an alias is never all digits, so the two cannot be
#: confused). A number past the registry's range is simply no model's version (404).
KSERVE_VERSION_PATTERN = f"^(?:[1-9][0-9]{{0,9}}|{ALIAS_PATTERN[1:-1]})$"

ModelName = Annotated[
    str,
    Path(description="A registered model's name.", pattern=NAME_PATTERN, max_length=NAME_LENGTH),
]
AliasName = Annotated[
    str,
    Path(
        description="An alias: a name that is not all digits (a number is a version).",
        pattern=ALIAS_PATTERN,
        max_length=NAME_LENGTH,
    ),
]
AppName = Annotated[
    str,
    Path(description="An application's name.", pattern=NAME_PATTERN, max_length=NAME_LENGTH),
]
VersionNumber = Annotated[
    int, Path(description="A version number of the model.", ge=1, le=MAX_VERSION)
]
KServeVersion = Annotated[
    str,
    Path(
        description="A version number or an alias of the model.",
        pattern=KSERVE_VERSION_PATTERN,
        max_length=NAME_LENGTH,
    ),
]
#: Free text a route filters or looks up by: anything but NUL, which PostgreSQL cannot hold
#: in a text value (it was a 500 there).
NO_NUL = r"^[^\x00]*$"
JobId = Annotated[
    str, Path(description="A job's id, as POST /v1/jobs answered it.", pattern=NO_NUL)
]


def text_query(description: str = "") -> Any:
    """A free-text query parameter (see :data:`NO_NUL`), None when absent."""
    return Query(None, description=description, pattern=NO_NUL)


#: Documented, not enforced here: the image API's fast path answers without FastAPI, and an
#: unknown question is a 404 on either path.
QuestionName = Annotated[
    str,
    Path(
        description="The question to ask (GET /v1/questions lists them).",
        json_schema_extra={"pattern": QUESTION_NAME.pattern, "maxLength": NAME_LENGTH},
    ),
]


class StrictBody(BaseModel):
    """A JSON request body taken as its schema says, no more: no type is coerced into
    another (``true`` or ``"3"`` is not an integer), and a field the schema does not name is
    refused rather than silently ignored (a misspelt ``expected_revison`` must not pass
    unchecked)."""

    model_config = ConfigDict(strict=True, extra="forbid", use_attribute_docstrings=True)


def _whole_number(value: Any) -> Any:
    """JSON Schema's integer is any number without a fractional part, ``3.0`` as well as
    ``3`` (JSON Schema 2020-12, which OpenAPI 3.1 uses, §6.1.1): a whole float is read as the
    integer it is; a fraction, a boolean or a string is left for strict validation to refuse."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


#: JSON integers in a :class:`StrictBody` (the range before the validator, so the schema
#: shows it as ``minimum`` and ``maximum``).
WHOLE = BeforeValidator(_whole_number)
VersionField = Annotated[int, Field(ge=1, le=MAX_VERSION), WHOLE]
RevisionField = Annotated[int, Field(ge=0, le=MAX_VERSION), WHOLE]
PercentField = Annotated[int, Field(ge=0, le=100), WHOLE]
AliasField = Annotated[str, Field(pattern=ALIAS_PATTERN, max_length=NAME_LENGTH)]
