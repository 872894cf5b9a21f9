"""Commands that write the store directly (DATABASE_URL, ARTIFACT_URL), not through the API:
`robustlab db upgrade` (migrations, and the bootstrap key a deployment's dashboard uses) and
`robustlab models import FOLDER` (register a checkpoint trained on the command line)."""

from __future__ import annotations

import json
from pathlib import Path


def cmd_db_upgrade(args) -> int:
    from core.settings import get_settings
    from core.store.db import session_scope
    from core.store.keys import ensure_key
    from core.store.migrate import upgrade

    settings = get_settings()
    upgrade(settings.database_url)
    report = {"database": settings.database_url.split("@")[-1], "migrated": True}
    if settings.bootstrap_key:
        with session_scope(settings.database_url) as s:
            report["bootstrap_key"] = ensure_key(s, name="bootstrap", key=settings.bootstrap_key).prefix
    print(json.dumps(report))
    return 0


def cmd_import(args) -> int:
    from core.contract.checkpoint import checkpoint_kind, read_meta
    from core.settings import get_settings
    from core.store.artifacts import ArtifactStore
    from core.store.db import session_scope
    from core.store.imports import import_checkpoint
    from core.store.migrate import upgrade

    folder = Path(args.folder)
    checks = None
    if checkpoint_kind(read_meta(folder)) == "classifier":  # the checks an upload through the API gets
        from core.models.bring_your_own import checked_checkpoint

        checks = checked_checkpoint(folder)
    settings = get_settings()
    upgrade(settings.database_url)
    with session_scope(settings.database_url) as s:
        row = import_checkpoint(s, ArtifactStore(settings.artifact_url), folder, name=args.name, summary=checks)
        print(json.dumps({"id": row.id, "kind": row.kind, "name": row.name, "dataset": row.dataset}))
    return 0


def add_commands(sub) -> None:
    db = sub.add_parser("db", help="the job store (DATABASE_URL)").add_subparsers(dest="db", required=True)
    u = db.add_parser("upgrade", help="apply migrations; with ROBUSTLAB_BOOTSTRAP_KEY set, make sure that key exists")
    u.set_defaults(func=cmd_db_upgrade)
    m = sub.add_parser("models", help="the model registry (writes to DATABASE_URL and ARTIFACT_URL)")
    commands = m.add_subparsers(dest="models", required=True)
    i = commands.add_parser("import", help="register a checkpoint folder trained outside the service")
    i.add_argument("folder")
    i.add_argument("--name", help="the registry name (default: dataset-folder)")
    i.set_defaults(func=cmd_import)
