"""`robustlab`: the library (train, evaluate, studies, DDPM), the service's client (submit, watch,
jobs, cancel, keys) and the store's administration (db, models import) on one command line."""

from __future__ import annotations

import argparse
import logging
import sys

from pydantic import ValidationError

from core.cli import admin, certify, ddpm, local, service
from core.contract.client import LabError


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="robustlab", description=__doc__)
    p.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = p.add_subparsers(dest="command", required=True)
    for commands in (local, certify, service, ddpm, admin):
        commands.add_commands(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        return args.func(args)
    except (ValueError, ValidationError, FileNotFoundError, LabError) as e:
        print(f"robustlab: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
