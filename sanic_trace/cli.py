"""The `sanic-trace` command: serve, demo-db, and the tools' bench and loadtest when they are installed."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from collections.abc import Sequence

from sanic_trace.settings import SettingsError, load_settings

DEMO_LOTS = 20_000


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
    from sanic_trace.demo.generator import (
        DEFAULT_DAYS,
        DEFAULT_START_DATE,
        WarehouseWriteError,
        build_demo_warehouse,
        build_parameters,
        describe_warehouse,
    )

    wanted = build_parameters(args.lots, args.seed, DEFAULT_START_DATE, DEFAULT_DAYS)
    if args.reuse:
        existing = describe_warehouse(args.path)
        if existing is not None and existing["build"] == wanted:
            print(_warehouse_line(args.path, existing["containers"], args, "reused"))
            return 0
    started = time.perf_counter()
    # The \r progress bar is for a terminal; in a log it would be one endless line.
    progress = not args.quiet and sys.stderr.isatty()
    try:
        counts = build_demo_warehouse(args.path, args.lots, seed=args.seed, progress=progress)
    except WarehouseWriteError as exc:
        print(f"sanic-trace demo-db: {exc}", file=sys.stderr)
        return 1
    elapsed = time.perf_counter() - started
    summary = ", ".join(f"{table} {count:,}" for table, count in counts.items())
    print(f"built {args.path} in {elapsed:.1f} s: {summary}", file=sys.stderr)
    print(_warehouse_line(args.path, counts["DW_MES_CONTAINER"], args, "built"))
    return 0


def _warehouse_line(path: str, containers: int, args: argparse.Namespace, how: str) -> str:
    return f"warehouse {path}: {containers:,} containers (--lots {args.lots} --seed {args.seed}; {how})"


# name -> (module with add_arguments(parser), help). The tools live outside the service package.
TOOLS = {
    "bench": ("trace_tools.bench", "memory and throughput benchmarks (docs/benchmarks.md)"),
    "loadtest": ("trace_tools.loadtest", "load a running service like the dashboard does"),
}
TOOLS_EXTRA = "tools"


def _add_tool(commands: argparse._SubParsersAction, name: str) -> None:
    """The tool's own subcommand, or, when a package it needs is missing, one that says what to install."""
    module, help_text = TOOLS[name]
    try:
        import trace_tools

        missing = ", ".join(trace_tools.missing_modules())
        tool = None if missing else importlib.import_module(module)
    except ModuleNotFoundError as exc:
        missing, tool = str(exc.name), None
    if tool is None:
        parser = commands.add_parser(name, help=f"{help_text} [needs: pip install 'sanic-trace[{TOOLS_EXTRA}]']")
        parser.add_argument("args", nargs=argparse.REMAINDER)

        def refuse(args: argparse.Namespace) -> int:
            print(
                f"sanic-trace {name}: needs {missing}, which is not installed; "
                f"install the '{TOOLS_EXTRA}' extra: pip install 'sanic-trace[{TOOLS_EXTRA}]'",
                file=sys.stderr,
            )
            return 2

        parser.set_defaults(run=refuse)
        return
    tool.add_arguments(commands.add_parser(name, help=help_text))


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
    demo_db.add_argument(
        "--lots", type=int, default=DEMO_LOTS, help=f"containers to generate (default {DEMO_LOTS:,})"
    )
    demo_db.add_argument("--seed", type=int, default=1, help="random seed; the same seed gives the same file")
    demo_db.add_argument(
        "--quiet", action="store_true", help="no progress bar (there is none when stderr is no terminal)"
    )
    demo_db.add_argument(
        "--reuse", action="store_true", help="keep an existing file built with the same --lots and --seed"
    )
    demo_db.set_defaults(run=_demo_db)

    for name in TOOLS:
        _add_tool(commands, name)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    raise SystemExit(main())
