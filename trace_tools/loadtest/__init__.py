"""`sanic-trace loadtest`: virtual users walking dashboard sessions against a running service.

    sanic-trace loadtest --url http://127.0.0.1:8080 --users 8 --duration 60 --scenario mixed \\
        --report var/loadtest.json

See docs/loadtest.md. Modules: target (who may be loaded), discovery (seed values from the
API), scenarios (the sessions), calls (timed, checked HTTP), checks (streaming body checks),
stats / report (figures), rss / health (memory), progress (the live line), runner (the run).

Exit status: 0 the run had no failures (429/503 backpressure alone does not fail it);
1 failures, or no session completed; 2 bad arguments or a refused target; 3 the service
could not be prepared for loading (unreachable, unhealthy, no data).
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from trace_tools.loadtest.scenarios import DEFAULT_MIX, SCENARIOS, parse_mix

EXIT_OK, EXIT_FAILURES, EXIT_USAGE, EXIT_NO_SERVICE = 0, 1, 2, 3


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1; got {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0; got {text}")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative; got {text}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    mix_text = ",".join(f"{k}={v:g}" for k, v in DEFAULT_MIX.items())
    parser.add_argument("--url", required=True, help="base URL of the service, e.g. http://127.0.0.1:8080")
    parser.add_argument("--allow-remote", action="store_true",
                        help="allow a target that is not loopback (127.0.0.0/8, ::1); refused otherwise")
    parser.add_argument("--users", type=_positive_int, default=4, help="virtual users (default 4)")
    parser.add_argument("--duration", type=_positive_float, default=30.0,
                        help="seconds during which users start requests (default 30)")
    parser.add_argument("--scenario", choices=[*SCENARIOS, "mixed"], default="mixed", help="default mixed")
    parser.add_argument("--mix", default=mix_text, help=f"weights for mixed (default {mix_text})")
    parser.add_argument("--max-requests", type=_positive_int, default=5000,
                        help="hard cap of requests per user (default 5000)")
    parser.add_argument("--grace", type=_non_negative_float, default=30.0,
                        help="after --duration, seconds in-flight requests may finish before they are cut (default 30)")
    parser.add_argument("--ramp-up", type=_non_negative_float, default=0.0,
                        help="spread the users' starts over this many seconds (default 0)")
    parser.add_argument("--think-time", type=_non_negative_float, default=0.0,
                        help="each user pauses a random 0..S seconds between sessions (default 0)")
    parser.add_argument("--max-backoff", type=_non_negative_float, default=5.0,
                        help="longest wait after a 429/503 Retry-After (default 5)")
    parser.add_argument("--timeout", type=_positive_float, default=120.0,
                        help="read timeout per request, seconds between bytes (default 120)")
    parser.add_argument("--no-gzip", dest="gzip", action="store_false",
                        help="do not accept gzip (by default the harness accepts it, like a browser)")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the users' choices (default 1)")
    parser.add_argument("--msd-range", metavar="START:END",
                        help="MSD date window YYYY-MM-DD:YYYY-MM-DD (default: probed from the service)")
    parser.add_argument("--msd-max-days", type=_positive_int, default=30,
                        help="msd sessions ask for 1..N days inside the window (default 30)")
    parser.add_argument("--large-ids", type=_positive_int, default=25_000,
                        help="container ids per large events request; must exceed the server's "
                             "TRACE_ASYNC_CID_THRESHOLD (default 25000; the default threshold is 20000)")
    parser.add_argument("--server-pid", type=int,
                        help="sample this process tree's RSS (default: the process listening on the URL's port)")
    parser.add_argument("--report", metavar="PATH", help="write the JSON report here")
    parser.add_argument("--quiet", action="store_true", help="no live progress line")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Check the arguments and the target, run the load, print the summary, write the report."""
    # Imported here: `sanic-trace --help` and the other subcommands need none of this.
    from trace_tools.loadtest import discovery, report, runner, target

    try:
        checked = target.check_target(args.url, args.allow_remote)
        mix = parse_mix(args.mix)
        msd_range = discovery.parse_range(args.msd_range) if args.msd_range else None
    except target.TargetRefused as exc:
        print(f"sanic-trace loadtest: refused: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ValueError as exc:
        print(f"sanic-trace loadtest: {exc}", file=sys.stderr)
        return EXIT_USAGE
    config = runner.RunConfig(
        target=checked,
        users=args.users,
        duration=args.duration,
        scenario=args.scenario,
        mix=mix,
        max_requests=args.max_requests,
        grace=args.grace,
        ramp_up=args.ramp_up,
        think_time=args.think_time,
        max_backoff=args.max_backoff,
        timeout=args.timeout,
        gzip=args.gzip,
        seed=args.seed,
        msd_range=msd_range,
        msd_max_days=args.msd_max_days,
        large_ids=args.large_ids,
        server_pid=args.server_pid,
        sample_interval=0.5,
        health_interval=1.0,
        progress=not args.quiet,
    )
    try:
        result = asyncio.run(runner.run_load(config))
    except discovery.DiscoveryFailed as exc:
        print(f"sanic-trace loadtest: cannot load {checked.url}: {exc}", file=sys.stderr)
        return EXIT_NO_SERVICE
    print(report.format_summary(result))
    if args.report:
        report.write_report(args.report, result)
        print(f"report: {args.report}", file=sys.stderr)
    completed = sum(o.get("completed", 0) for o in result["run"]["sessions"].values())
    if result["errors"]["failures"] or completed == 0:
        return EXIT_FAILURES
    return EXIT_OK
