"""What a model package's ``argus.yaml`` says, typed, and the package it describes.

A manifest is parsed once, when its package is loaded (:func:`argus.models.packages.load_package`):
the fields every package has into :class:`Manifest`, the keys its task reads (``options``,
``preprocess``, …) into that task's :class:`TaskFields` (``TaskModel.fields``). Everyone reads
the typed fields. The mapping as written is kept as ``ModelPackage.raw``: the package digest is
the sha256 of its canonical JSON, so it is hashed and copied as written, never rebuilt from the
typed model (which drops unknown keys and fills in defaults).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any, Self, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from argus.errors import BadPackage

MANIFEST = "argus.yaml"
FORMAT = 1


def explain(exc: ValidationError) -> str:
    """One sentence per problem, naming the manifest key (``runtime.max_wait_ms``) at fault."""
    problems: list[str] = []
    unknown: dict[str, list[str]] = {}
    for err in exc.errors():
        loc = [str(part) for part in err["loc"]]
        where = ".".join(loc)
        if err["type"] == "missing" and len(loc) == 1:
            problems.append(f"manifest is missing {where!r}")
        elif err["type"] == "missing":
            problems.append(f"{where} is missing")
        elif err["type"] == "extra_forbidden":
            unknown.setdefault(".".join(loc[:-1]), []).append(loc[-1])
        elif err["type"] == "value_error":
            # Our own validators' messages name the key themselves.
            problems.append(str(err.get("ctx", {}).get("error", err["msg"])))
        else:
            message = err["msg"][:1].lower() + err["msg"][1:]
            given = repr(err["input"])
            given = given if len(given) <= 60 else given[:57] + "..."
            problems.append(f"{where or 'manifest'}: {message}, not {given}")
    for parent, keys in unknown.items():
        problems.append(f"unknown {parent or 'manifest'} keys: {', '.join(sorted(keys))}")
    return "; ".join(problems)


class _Parsed(BaseModel):
    @model_validator(mode="before")
    @classmethod
    def _null_is_default(cls, data: Any) -> Any:
        # A key given as null (``options:`` with nothing after it) means its default, as it
        # always has; a required key given as null is missing.
        if isinstance(data, dict):
            return {key: value for key, value in data.items() if value is not None}
        return data

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> Self:
        """Validate ``data``; every problem is a :class:`BadPackage` that says what is wrong."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise BadPackage(explain(exc)) from None


class TensorSpec(BaseModel):
    """One input or output tensor, as KServe v2 model metadata describes it."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    name: str
    datatype: str = ""
    """KServe datatype: FP32, FP16, INT64, UINT8, BYTES, …"""
    shape: tuple[int, ...] = ()
    """-1 for a dimension of any size (the batch)."""


class Bf16Check(BaseModel):
    """How bf16 was checked against f32 before the runtime may use it (``argus.convert``)."""

    model_config = ConfigDict(frozen=True, extra="allow")

    images: int
    top1_agreement: float
    max_abs_logit_diff: float | None = None
    photos: str | None = None


class RuntimeHints(BaseModel):
    """The manifest's ``runtime`` block: how the server should run the model by default."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    engine: str | None = None
    """onnxruntime or openvino (checked with the settings' override in ``RuntimeChoice``)."""
    precision: str | None = None
    """OpenVINO precision: f32 or bf16."""
    bf16_checked: Bf16Check | bool | None = None
    """bf16 is used only where this says its accuracy was checked."""
    max_batch_size: int = Field(default=8, ge=1)
    max_wait_ms: float = Field(default=2.0, ge=0)


class Source(BaseModel):
    """Where the model came from; free-form beyond these keys, stored with each version."""

    model_config = ConfigDict(frozen=True, extra="allow")

    kind: str | None = None
    """wheel, file, … (how it was obtained)."""
    wheels: list[dict[str, str]] | None = None
    """Pinned wheels: wheel, project, version, sha256, url."""
    file: str | None = None
    url: str | None = None
    note: str | None = None
    upstream: str | None = None
    converter: str | None = None

    def record(self) -> dict[str, Any]:
        """The block as written, for the registry's version row."""
        return self.model_dump(exclude_unset=True)


class Manifest(_Parsed):
    """The keys every package's manifest has. Unknown keys are allowed (they stay in ``raw``
    and in the digest) but nothing reads them."""

    model_config = ConfigDict(frozen=True, extra="ignore", coerce_numbers_to_str=True)

    format: int = FORMAT
    name: str
    task: str
    """Which task turns pixels into its answers (``argus.tasks.TASKS``)."""
    description: str = ""
    license: str
    source: Source
    files: dict[str, str]
    """sha256 of every other file in the package, by relative path."""
    labels: str | None = None
    """File of class names, one per line."""
    model: str = "model.onnx"
    """The ONNX file of a one-network package."""
    models: dict[str, str] | None = None
    """The ONNX files of a several-network package, by role (MTCNN: pnet, rnet, onet)."""
    inputs: tuple[TensorSpec, ...] = ()
    outputs: tuple[TensorSpec, ...] = ()
    runtime: RuntimeHints = RuntimeHints()

    @field_validator("files", mode="before")
    @classmethod
    def _files(cls, value: Any) -> Any:
        if not isinstance(value, dict) or not value:
            raise ValueError("manifest 'files' must map file names to sha256")
        for rel in value:
            if (
                not isinstance(rel, str)
                or rel == MANIFEST
                or rel.startswith("/")
                or ".." in PurePosixPath(rel).parts
            ):
                raise ValueError(f"bad file name in manifest: {rel!r}")
        return value

    @model_validator(mode="after")
    def _named_files_are_hashed(self) -> Self:
        # A file the manifest names but ``files`` does not list would be read unverified (and
        # ``labels: ../../elsewhere`` from outside the package): every named file must be listed,
        # and so inside the package and checked against its sha256 before a load.
        named: dict[str, str | None] = {"labels": self.labels}
        if self.models:
            named.update({f"models.{role}": rel for role, rel in self.models.items()})
        else:
            named["model"] = self.model
        for key, rel in named.items():
            if rel is not None and rel not in self.files:
                raise ValueError(
                    f"'{key}' names {rel!r}, which is not among the package's hashed 'files'"
                )
        return self

    def onnx_files(self) -> dict[str, str]:
        """Relative path of each ONNX file, by role (``model`` for one-network packages)."""
        return dict(self.models) if self.models else {"model": self.model}


class TaskFields(_Parsed):
    """The manifest keys one task reads beyond :class:`Manifest`'s (its ``options``, its
    ``preprocess``, …); each task subclasses it as ``TaskModel.fields``. Validated with the
    manifest when the package loads."""

    model_config = ConfigDict(frozen=True, extra="ignore")


def _triple(value: Any, name: str) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (float(value),) * 3
    if isinstance(value, list | tuple) and len(value) == 3:
        return tuple(value)
    raise ValueError(f"preprocess.{name} must be a number or three numbers")


class Preprocess(BaseModel):
    """The ``preprocess`` block: how pixels become the model's input tensor (resize the shorter
    side, centre crop, normalise) for tasks whose input is one image tensor."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    resize_shorter: int = 256
    crop: int = 224
    color: str = "RGB"
    """Channel order: RGB or BGR."""
    mean: tuple[float, float, float] = (127.0, 127.0, 127.0)
    std: tuple[float, float, float] = (128.0, 128.0, 128.0)
    layout: str = "NCHW"
    """NCHW or NHWC."""

    @field_validator("mean", "std", mode="before")
    @classmethod
    def _spread(cls, value: Any, info: ValidationInfo) -> Any:
        return _triple(value, str(info.field_name))

    @field_validator("color")
    @classmethod
    def _color(cls, value: str) -> str:
        if value not in ("RGB", "BGR"):
            raise ValueError(f"preprocess.color must be RGB or BGR, not {value!r}")
        return value

    @field_validator("layout")
    @classmethod
    def _layout(cls, value: str) -> str:
        if value not in ("NCHW", "NHWC"):
            raise ValueError(f"preprocess.layout must be NCHW or NHWC, not {value!r}")
        return value

    @model_validator(mode="after")
    def _sizes(self) -> Self:
        if self.crop <= 0 or self.resize_shorter < self.crop:
            raise ValueError("preprocess needs 0 < crop <= resize_shorter")
        if any(s == 0 for s in self.std):
            raise ValueError("preprocess.std must not contain 0")
        return self

    @classmethod
    def for_input(cls, given: Mapping[str, Any], shape: Sequence[int]) -> dict[str, Any]:
        """The block to write for a model whose input has ``shape`` (N, C, H, W): what was
        given, with the crop taken from a fixed input side and the usual 256/224 resize."""
        block = dict(given)
        if "crop" not in block and len(shape) == 4 and shape[2] > 0:
            block["crop"] = shape[2]
            block.setdefault("resize_shorter", round(shape[2] * 256 / 224))
        return block


F = TypeVar("F", bound=TaskFields)


class ModelPackage:
    """A verified package on disk: its typed manifest, its task's typed fields, the manifest
    as written (``raw``, which the digest identifies) and its class names."""

    def __init__(
        self,
        path: Path,
        manifest: Manifest,
        digest: str,
        labels: Sequence[str] = (),
        *,
        raw: Mapping[str, Any] | None = None,
        fields: TaskFields | None = None,
    ) -> None:
        self.path = path
        self.manifest = manifest
        self.digest = digest
        self.labels = list(labels)
        self.raw: dict[str, Any] = dict(raw or {})
        self.fields = fields if fields is not None else TaskFields()

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def task(self) -> str:
        return self.manifest.task

    @property
    def runtime(self) -> RuntimeHints:
        return self.manifest.runtime

    def fields_as(self, kind: type[F]) -> F:
        """This package's task fields as the task's own model (its ``TaskModel.fields``)."""
        if not isinstance(self.fields, kind):
            raise BadPackage(
                f"package {self.name} is a {self.task} package; it has no {kind.__name__}"
            )
        return self.fields

    def file(self, relname: str) -> Path:
        if relname not in self.manifest.files:
            raise BadPackage(f"package {self.name} has no file {relname!r}")
        return self.path / relname

    def onnx_files(self) -> dict[str, Path]:
        return {key: self.file(rel) for key, rel in self.manifest.onnx_files().items()}
