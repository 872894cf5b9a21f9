"""Authorising what a submitted spec names, before anything is stored or queued.

Every reference a spec declares (`core.contract.references`) must name an object that exists, is
of the declared kind, and that the caller may read (404 otherwise, the same answer as for an
object that does not exist); an object the job consumes must moreover be the caller's own raw
upload that no other job names (403). Datasets come from the catalogue: no path, a data-root
folder that exists, an uploaded dataset the caller may read.
"""

from __future__ import annotations

from fastapi import HTTPException, status
from pydantic import BaseModel
from sqlalchemy.orm import Session

from api.access import artifact_visible, data_root_folders, model_visible, visible_dataset, visible_job
from api.deps import Caller
from core.contract.kinds import job_kind
from core.contract.references import Reference, references
from core.contract.specs import DataSpec
from core.settings import Settings
from core.store.orm import Artifact, RegisteredModel
from core.store.privacy import consumable


def nested_specs(spec: BaseModel, path: str = ""):
    """`(path, spec)` for `spec` (path "") and every spec inside it, depth first (`generated.data`)."""
    yield path, spec
    for field in type(spec).model_fields:
        if isinstance(value := getattr(spec, field), BaseModel):
            yield from nested_specs(value, f"{path}.{field}" if path else field)


def check_data(settings: Settings, field: str, data: DataSpec) -> None:
    """A spec's dataset comes from the catalogue: no path (422), a data-root folder that exists (404)."""
    if data.root is not None:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"spec.{field}.root: the service takes no paths; name a dataset (GET /v1/datasets)",
        )
    if data.name == "folder" and not data.folder:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"spec.{field}.folder: name a folder of the data root (GET /v1/datasets)",
        )
    if data.name == "folder" and data.folder not in data_root_folders(settings):
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"spec.{field}.folder: no folder {data.folder!r} in the data root"
        )


def _missing(reference: Reference) -> HTTPException:
    ref = reference.ref
    what = f"registered {ref.model_kind} model" if ref.target == "model" else ref.what
    return HTTPException(status.HTTP_404_NOT_FOUND, f"spec.{reference.path}: no {what} with id {reference.value!r}")


def authorize_reference(session: Session, caller: Caller, reference: Reference, kind: str) -> None:
    """404 unless the caller may read the object `reference` names and it is what the field
    declares; 403 when the job would consume something that is not the caller's own raw upload."""
    ref, ident = reference.ref, reference.value
    if ref.target == "model":
        model = session.get(RegisteredModel, ident)
        if model is None or model.kind != ref.model_kind or not model_visible(caller, model):
            raise _missing(reference)
    elif ref.target == "dataset":
        visible_dataset(session, caller, ident)
    elif ref.target == "job":
        visible_job(session, caller, ident)
    else:
        artifact = session.get(Artifact, ident)
        if artifact is None or not artifact_visible(session, caller, artifact):
            raise _missing(reference)
        if ref.use == "consumes" and (why := consumable(session, artifact, caller.user_id, None)) is not None:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, f"spec.{reference.path}: {kind} deletes what it is given, and {why}"
            )
        if ref.artifact_types and artifact.type not in ref.artifact_types:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                f"spec.{reference.path}: artifact {ident!r} is a {artifact.type}; "
                f"{kind} takes {' or '.join(ref.artifact_types)}",
            )


def authorize(session: Session, settings: Settings, caller: Caller, kind: str, spec: BaseModel) -> list[Reference]:
    """Check everything `spec` names (see the module's docstring); returns its references. The
    registered model a kind acts on must be named (422)."""
    for field, value in nested_specs(spec):
        if isinstance(value, DataSpec):
            check_data(settings, field, value)
    row = job_kind(kind)
    if row.acts_on is not None and not spec.model_id:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, f"spec.model_id: {kind} needs a registered {row.acts_on}"
        )
    found = references(row.spec, spec)
    for reference in found:
        authorize_reference(session, caller, reference, kind)
    return found
