"""Commands that write the store directly (DATABASE_URL, ARTIFACT_URL, REDIS_URL), not through the
API, for the operator on the server: `robustlab db upgrade` (migrations, and the bootstrap admin
key), `robustlab db create-key USER` and `robustlab db revoke-key KEY_ID` (keys without a key),
`robustlab db gc` (artifact files nothing points to) and `robustlab models import PATH` (register
a checkpoint trained on the command line, or a weights file from elsewhere)."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from core.cli.result_table import add_json_flag, print_result
from core.contract.names import ROLES


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
    print_result(report, args, indent=None)
    return 0


def cmd_create_key(args) -> int:
    from datetime import timedelta

    from core.settings import get_settings
    from core.store import audit
    from core.store.db import session_scope
    from core.store.keys import announce_key_change, create_key, ensure_user
    from core.store.migrate import upgrade
    from core.store.orm import utcnow

    settings = get_settings()
    upgrade(settings.database_url)
    with session_scope(settings.database_url) as s:
        user = ensure_user(s, name=args.user, role=args.role)
        expires = utcnow() + timedelta(days=args.expires_days) if args.expires_days else None
        row, key = create_key(s, name=args.name or f"{args.user}-cli", user=user, expires_at=expires)
        audit.record(
            s,
            user_id=None,
            user_name="operator (command line)",
            action="create",
            object_type="key",
            object_id=row.id,
            detail={"user": user.name, "role": user.role},
        )
        report = {"id": row.id, "user": user.name, "role": user.role, "expires_at": str(expires) if expires else None}
    if args.role:
        announce_key_change(settings.redis_url)
    print(key)
    print_result(report, args, indent=None, file=sys.stderr)  # stdout: the key alone
    return 0


def cmd_revoke_key(args) -> int:
    from core.settings import get_settings
    from core.store import audit
    from core.store.db import session_scope
    from core.store.keys import announce_key_change, revoke_key

    settings = get_settings()
    with session_scope(settings.database_url) as s:
        if revoke_key(s, key_id=args.key_id) is None:
            raise ValueError(f"no key with id {args.key_id}")
        audit.record(
            s,
            user_id=None,
            user_name="operator (command line)",
            action="revoke",
            object_type="key",
            object_id=args.key_id,
        )
    told = announce_key_change(settings.redis_url)
    print_result({"revoked": args.key_id, "api_processes_told": told}, args, indent=None)
    return 0


def cmd_gc(args) -> int:
    from core.settings import get_settings
    from core.store.artifacts import ArtifactStore
    from core.store.db import session_scope
    from core.store.deletion import collect_garbage

    settings = get_settings()
    with session_scope(settings.database_url) as s:
        deleted = collect_garbage(s, ArtifactStore(settings.artifact_url), older_than_seconds=args.older_than)
    print_result({"deleted": len(deleted), "keys": deleted[:100]}, args, indent=None)
    return 0


def cmd_import(args) -> int:
    from core.contract.checkpoint import checkpoint_kind, read_meta
    from core.settings import get_settings
    from core.store.artifacts import ArtifactStore
    from core.store.db import session_scope
    from core.store.imports import import_checkpoint
    from core.store.migrate import upgrade

    settings = get_settings()
    path = Path(args.path)
    with tempfile.TemporaryDirectory() as tmp:
        folder, name, source = path, args.name, {}
        if path.is_file():  # a weights file from elsewhere: made a checkpoint folder, checked as an upload
            folder, name, source = _folder_from_weights(args, path, Path(tmp), settings.max_model_bytes)
        elif args.model or args.dataset:
            raise ValueError("--model and --dataset are for a weights file; a checkpoint folder names its own")
        checks = None
        if checkpoint_kind(read_meta(folder)) == "classifier":  # the checks an upload through the API gets
            from core.models.bring_your_own import checked_checkpoint

            checks = {**checked_checkpoint(folder), **source}
        upgrade(settings.database_url)
        with session_scope(settings.database_url) as s:
            row = import_checkpoint(s, ArtifactStore(settings.artifact_url), folder, name=name, summary=checks)
            print_result({"id": row.id, "kind": row.kind, "name": row.name, "dataset": row.dataset}, args, indent=None)
    return 0


def _folder_from_weights(args, path: Path, tmp: Path, max_bytes: int) -> tuple[Path, str, dict]:
    """(checkpoint folder, registry name, summary fields) for a safetensors or PyTorch file."""
    from core.contract.specs import DataSpec, ModelSpec
    from core.models.state_dicts import write_checkpoint_folder

    if not args.model or not args.dataset:
        raise ValueError(f"{path} is a weights file: give --model (a ModelSpec as JSON) and --dataset")
    if path.stat().st_size > max_bytes:
        raise ValueError(f"{path}: {path.stat().st_size} bytes, over ROBUSTLAB_MAX_MODEL_BYTES ({max_bytes})")
    spec, data = ModelSpec.model_validate_json(args.model), DataSpec.from_label(args.dataset)
    folder = write_checkpoint_folder(path.read_bytes(), spec, data, tmp / path.stem)
    return folder, args.name or f"{data.label}-import-{spec.arch}", {"imported_from": str(path)}


def add_commands(sub) -> None:
    db = sub.add_parser("db", help="the job store (DATABASE_URL)").add_subparsers(dest="db", required=True)
    u = db.add_parser("upgrade", help="apply migrations; with ROBUSTLAB_BOOTSTRAP_KEY set, make sure that key exists")
    add_json_flag(u)
    u.set_defaults(func=cmd_db_upgrade)
    k = db.add_parser("create-key", help="make a key for USER (created if new), printed once")
    k.add_argument("user")
    k.add_argument("--role", choices=ROLES, help="set the user's role (default: member for a new user)")
    k.add_argument("--name", help="what the key is for (default USER-cli)")
    k.add_argument("--expires-days", type=float)
    add_json_flag(k)
    k.set_defaults(func=cmd_create_key)
    r = db.add_parser("revoke-key", help="revoke a key by id: it stops working at once on every API process")
    r.add_argument("key_id")
    add_json_flag(r)
    r.set_defaults(func=cmd_revoke_key)
    g = db.add_parser("gc", help="delete artifact files that no row, model or job points to")
    g.add_argument("--older-than", type=float, default=3600, help="seconds; younger files are kept")
    add_json_flag(g)
    g.set_defaults(func=cmd_gc)
    m = sub.add_parser("models", help="the model registry (writes to DATABASE_URL and ARTIFACT_URL)")
    commands = m.add_subparsers(dest="models", required=True)
    i = commands.add_parser(
        "import",
        help="register a checkpoint folder trained outside the service, or a weights file (safetensors, or a "
        "PyTorch state dict read with torch.load(weights_only=True): torchvision, TRADES, RobustBench layouts)",
    )
    i.add_argument("path", help="a checkpoint folder, or a weights file")
    i.add_argument("--name", help="the registry name (default: dataset-folder, or dataset-import-arch)")
    i.add_argument("--model", help="for a weights file: its ModelSpec as JSON, with the mean and std it expects")
    i.add_argument("--dataset", help="for a weights file: the dataset it classifies (a name, folder:<name>)")
    add_json_flag(i)
    i.set_defaults(func=cmd_import)
