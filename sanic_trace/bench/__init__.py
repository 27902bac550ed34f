"""`sanic-trace bench`: memory and throughput of the job path against the accumulate-then-store baseline."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.set_defaults(run=_not_built)


def _not_built(args: argparse.Namespace) -> int:
    raise SystemExit("sanic-trace bench: not built yet")
