"""`sanic-trace loadtest`: virtual users walking dashboard sessions against a running service."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.set_defaults(run=_not_built)


def _not_built(args: argparse.Namespace) -> int:
    raise SystemExit("sanic-trace loadtest: not built yet")
