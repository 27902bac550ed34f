"""`sanic-trace bench`: memory and throughput of the job path against the accumulate-then-store baseline.

For each case (a number of container ids × a set of domains) three variants run one after
another, each in a process of its own sampled by the same RSS sampler:

    ours      the real job path: the service's pool supervisor, its child, chunks into Redis (ours.py)
    baseline  the seed's design: fetchall, dicts, group, flatten, store at the end (baseline.py)
    floor     the same queries fetched with fetchmany and only counted (floor.py)

Then, against a real `sanic-trace serve --single-process`, the live stream's first records, the
stream read rate against a bare Redis GET loop, and /health latency under load (http_phase.py).
Results go to a JSON file and into the marked section of a Markdown file (report.py).

This module stays import-light on purpose: the CLI imports it to build its parser for every
command, and the bench's spawn children import the package before their own module.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from trace_tools.bench.plan import add_plan_arguments

    add_plan_arguments(parser)
    parser.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    from trace_tools.bench.main import run

    return run(args)
