"""Artifact bytes (checkpoints, images, reports)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Response, status

from api.access import artifact_visible
from api.deps import KeyDep, SessionDep, SettingsDep, not_found
from core.store.artifacts import ArtifactStore
from core.store.orm import Artifact

router = APIRouter(prefix="/v1/artifacts", tags=["artifacts"])


@router.get(
    "/{artifact_id}",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}, "image/png": {}}}},
)
def read_artifact(artifact_id: str, session: SessionDep, settings: SettingsDep, caller: KeyDep) -> Response:
    """An artifact's bytes, if the caller may see it (a job's follow the job; an upload is its owner's)."""
    row = session.get(Artifact, artifact_id)
    if row is None or not artifact_visible(session, caller, row):
        raise not_found("artifact", artifact_id)
    try:
        data = ArtifactStore(settings.artifact_url).get_bytes(row.uri)
    except FileNotFoundError as e:
        raise HTTPException(status.HTTP_410_GONE, f"artifact {artifact_id} is recorded but its bytes are gone") from e
    return Response(data, media_type=row.content_type, headers={"ETag": row.sha256})
