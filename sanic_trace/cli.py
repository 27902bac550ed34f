"""The `sanic-trace` command: serve, demo-db."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence

from sanic_trace.settings import SettingsError, load_settings


def _serve(args: argparse.Namespace) -> int:
    if args.env_file:
        # The factory reads it again in every worker process, so hand it on through the environment.
        os.environ["TRACE_ENV_FILE"] = args.env_file
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"sanic-trace: invalid configuration: {exc}", file=sys.stderr)
        return 2
    from sanic import Sanic
    from sanic.worker.loader import AppLoader

    from sanic_trace.app import create_app

    loader = AppLoader(factory=create_app)
    app = loader.load()
    host = args.host or settings.host
    port = args.port or settings.port
    workers = args.workers or settings.http_workers
    app.prepare(
        host=host,
        port=port,
        workers=1 if args.single_process else workers,
        single_process=args.single_process,
        access_log=args.access_log,
        motd=False,
    )
    if args.single_process:
        Sanic.serve_single(primary=app)
    else:
        Sanic.serve(primary=app, app_loader=loader)
    return 0


def _demo_db(args: argparse.Namespace) -> int:
    from sanic_trace.demo.generator import build_demo_warehouse

    started = time.perf_counter()
    counts = build_demo_warehouse(args.path, args.lots, seed=args.seed, progress=not args.quiet)
    elapsed = time.perf_counter() - started
    summary = ", ".join(f"{table} {count:,}" for table, count in counts.items())
    print(f"built {args.path} in {elapsed:.1f} s: {summary}", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sanic-trace", description="Lot-trace service for an MES warehouse.")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the HTTP service and its job supervisor")
    serve.add_argument("--env-file", help="read settings from this file (the environment wins)")
    serve.add_argument("--host", help="listen address (default TRACE_HOST)")
    serve.add_argument("--port", type=int, help="listen port (default TRACE_PORT)")
    serve.add_argument("--workers", type=int, help="HTTP worker processes (default TRACE_HTTP_WORKERS)")
    serve.add_argument("--single-process", action="store_true", help="no worker manager: one process, jobs in a thread")
    serve.add_argument("--access-log", action="store_true", help="log every request")
    serve.set_defaults(run=_serve)

    demo_db = commands.add_parser("demo-db", help="build the embedded demo MES warehouse (SQLite)")
    demo_db.add_argument("path", help="SQLite file to write (replaced if it exists)")
    demo_db.add_argument("--lots", type=int, default=3000, help="containers to generate (default 3000)")
    demo_db.add_argument("--seed", type=int, default=1, help="random seed; the same seed gives the same file")
    demo_db.add_argument("--quiet", action="store_true", help="no progress bar")
    demo_db.set_defaults(run=_demo_db)

    from sanic_trace.bench import add_arguments as add_bench_arguments
    from sanic_trace.loadtest import add_arguments as add_loadtest_arguments

    add_bench_arguments(commands.add_parser("bench", help="memory and throughput benchmarks (docs/benchmarks.md)"))
    add_loadtest_arguments(commands.add_parser("loadtest", help="load a running service like the dashboard does"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    raise SystemExit(main())
