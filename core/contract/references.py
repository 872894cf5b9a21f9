"""What a spec names of the stored objects: every such field is declared here, once, as a typed
marker on the field (`Annotated[str, Ref(...)]`), never guessed from its name. Submission
authorises each reference, deletion protects what an unfinished job names, the interactive
answer links them, and the audit log records them, all through `references`.

    class ImageAttackSpec(Spec):
        model_id: ClassifierId
        input_artifact_id: ImageArtifactId | None = None

Torch-free (the API imports it).
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, Field

from core.contract.names import ModelKind

Target = Literal["artifact", "model", "dataset", "job"]
Use = Literal["reads", "consumes"]
ID_LENGTH = 64


@dataclass(frozen=True)
class Ref:
    """A spec field that names a stored object.

    Args:
        target: what the id names: an `artifact`, a registered `model`, an uploaded or generated
            `dataset`, or a `job`.
        use: `reads` (the job only reads it) or `consumes` (the job deletes it when done: only the
            caller's own raw upload, named by nothing else, may be consumed).
        model_kind: for a model, the kind it must be (`classifier`, `diffusion`).
        artifact_types: for an artifact, the types it may have (`upload`, `image`, ...).
    """

    target: Target
    use: Use = "reads"
    model_kind: ModelKind | None = None
    artifact_types: tuple[str, ...] = ()

    @property
    def what(self) -> str:
        """How a message names the object: `classifier`, `diffusion model`, `artifact`, `dataset`."""
        if self.model_kind == "classifier":
            return "classifier"
        return f"{self.model_kind} model" if self.model_kind else self.target


ClassifierId = Annotated[str, Field(max_length=ID_LENGTH), Ref("model", model_kind="classifier")]
DiffusionId = Annotated[str, Field(max_length=ID_LENGTH), Ref("model", model_kind="diffusion")]
DatasetId = Annotated[str, Field(max_length=ID_LENGTH), Ref("dataset")]
ImageArtifactId = Annotated[str, Field(max_length=ID_LENGTH), Ref("artifact", artifact_types=("upload", "image"))]
ConsumedUploadId = Annotated[
    str, Field(max_length=ID_LENGTH), Ref("artifact", use="consumes", artifact_types=("upload",))
]


@dataclass(frozen=True)
class Reference:
    """One object a spec names: where (`data.dataset_id`), what it must be, and its id."""

    path: str
    ref: Ref
    value: str


def _ref_of(metadata: list, annotation: Any) -> Ref | None:
    """The field's `Ref`: in its metadata, or inside its type (`ClassifierId | None`)."""
    found = next((m for m in metadata if isinstance(m, Ref)), None)
    if found is not None or annotation is None:
        return found
    if typing.get_origin(annotation) is Annotated:
        return next((m for m in annotation.__metadata__ if isinstance(m, Ref)), None)
    if typing.get_origin(annotation) in (Union, types.UnionType):
        return next(filter(None, (_ref_of([], a) for a in typing.get_args(annotation))), None)
    return None


def _nested_models(annotation: Any) -> Iterator[type[BaseModel]]:
    """The spec models inside a field's type (through Optional, unions, lists and dicts)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
        return
    if typing.get_origin(annotation) is not None:
        for arg in typing.get_args(annotation):
            yield from _nested_models(arg)


def declared(spec_type: type[BaseModel], prefix: str = "") -> list[tuple[str, Ref]]:
    """Every reference field of `spec_type` and of the specs inside it, as (`path`, `Ref`); a list
    of specs appears as `field[]`."""
    out = []
    for name, info in spec_type.model_fields.items():
        path = f"{prefix}{name}"
        ref = _ref_of(info.metadata, info.annotation)
        if ref is not None:
            out.append((path, ref))
            continue
        listed = typing.get_origin(info.annotation) is list or any(
            typing.get_origin(a) is list for a in typing.get_args(info.annotation)
        )
        for model in dict.fromkeys(_nested_models(info.annotation)):
            out.extend(declared(model, f"{path}[]." if listed else f"{path}."))
    return out


def _values(tree: Any, parts: list[str], path: str) -> Iterator[tuple[str, str]]:
    if not parts:
        if isinstance(tree, str) and tree:
            yield path, tree
        return
    head, rest = parts[0], parts[1:]
    name, listed = head.removesuffix("[]"), head.endswith("[]")
    value = tree.get(name) if isinstance(tree, dict) else None
    here = f"{path}.{name}" if path else name
    if listed:
        for i, item in enumerate(value if isinstance(value, list) else []):
            yield from _values(item, rest, f"{here}[{i}]")
    else:
        yield from _values(value, rest, here)


def references(spec_type: type[BaseModel], spec: BaseModel | dict) -> list[Reference]:
    """The stored objects a spec of type `spec_type` names (empty ids and unset fields left out).

    `spec` is the model or its JSON form as stored with a job: the declared paths are read from
    the JSON, so a stored spec written by an older version is read as far as its fields go.
    """
    tree = spec.model_dump(mode="json") if isinstance(spec, BaseModel) else spec
    return [
        Reference(where, ref, value)
        for path, ref in declared(spec_type)
        for where, value in _values(tree, path.split("."), "")
    ]


def ids_named(spec_type: type[BaseModel], spec: BaseModel | dict, target: Target) -> set[str]:
    """The ids of the `target` objects a spec names."""
    return {r.value for r in references(spec_type, spec) if r.ref.target == target}
