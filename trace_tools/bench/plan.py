"""The bench's options: the command-line arguments, and the full and --quick defaults behind them.

Where it writes is explicit, and never relative to where the tools are installed:

    --docs-dir DIR   the results: benchmarks.json, benchmarks.md (its marked results section,
                     and its marked MSD section) and benchmarks-rss.png; --quick: quick.json,
                     quick.md, quick-rss.png. `--msd` (the MSD case alone) writes its JSON to
                     benchmarks-msd.json / quick-msd.json and only the MSD section of the Markdown
    --work-dir DIR   scratch: the demo warehouse, the server's log

Their defaults are found from the working tree: the top of the git checkout the bench is run
in (`git rev-parse --show-toplevel`), or the working directory outside a checkout. The full
run's results go to its docs/, a quick run's to the scratch directory (var/bench), so a quick
run never rewrites the committed figures.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

FULL_SIZES = (10_000, 50_000, 114_000)
QUICK_SIZES = (2_000, 8_000)
DOMAIN_SETS = (("history", "materials"), ("upstream_history", "materials"))
WORK_DIR = Path("var/bench")  # under the checkout (or the working directory)
DOCS_DIR = Path("docs")  # likewise; the full run's results
FULL_STEM, QUICK_STEM = "benchmarks", "quick"
# The profile of the plain events jobs, whatever their domains: under the MSD profile a job runs
# the analysis as well, which is the MSD case's to measure (msd_case.py), not the plain cases'.
PLAIN_PROFILE = "query_tool"


@dataclass(frozen=True)
class Plan:
    quick: bool
    lots: int
    seed: int
    warehouse: Path
    work_dir: Path
    docs_dir: Path
    docs_dir_from: str  # how docs_dir was chosen, for the report
    sizes: tuple[int, ...]
    domain_sets: tuple[list[str], ...]
    sample_interval: float
    timeout_s: float
    redis_url: str
    prefix: str
    output: Path
    markdown: Path | None
    plot: Path
    profile: bool
    http: bool
    first_records_runs: int
    read_repeats: int
    health_jobs: int
    health_clients: int
    health_samples: int
    health_idle_samples: int
    health_interval: float
    health_max_seconds: float
    msd: bool  # the MSD case runs (msd_case.py)
    msd_only: bool  # ... and nothing else does
    msd_reaggregation_runs: int
    domain_costs: bool  # the per-domain query cost case (floor.py, every query_tool domain)
    quiet: bool
    targets_file: Path | None
    target_overrides: tuple[str, ...]


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part.replace("_", "")) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"sizes must be comma-separated integers, got {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError("sizes must be positive")
    return tuple(sorted(set(sizes)))


def _domain_sets(text: str) -> tuple[list[str], ...]:
    from sanic_trace.trace.events import validate_domains

    sets = []
    for part in text.split(";"):
        names = [name.strip() for name in part.split(",") if name.strip()]
        try:
            sets.append(validate_domains(names))
        except Exception as exc:  # noqa: BLE001 - ApiError from the shared check, shown as a usage error
            raise argparse.ArgumentTypeError(str(exc)) from None
    return tuple(sets)


def add_plan_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--quick", action="store_true", help="a small run (10,000 lots, 2,000/8,000 ids, the MSD case): about 2 minutes"
    )
    parser.add_argument("--lots", type=int, help="lots of the demo warehouse to build (default 120,000; quick 10,000)")
    parser.add_argument("--seed", type=int, default=1, help="warehouse and id-sampling seed (default 1)")
    parser.add_argument("--warehouse", type=Path, help="SQLite warehouse to use, built there if missing")
    parser.add_argument(
        "--work-dir", type=Path, help="scratch dir: warehouse, server log (default var/bench of the checkout)"
    )
    parser.add_argument(
        "--docs-dir",
        type=Path,
        help="where the results go (default: the checkout's docs/; --quick: the work dir); "
        "the checkout is found with git from the working directory, else the working directory is used",
    )
    parser.add_argument("--sizes", type=_sizes, help="container ids per case (default 10000,50000,114000)")
    parser.add_argument(
        "--domain-sets",
        type=_domain_sets,
        help='";"-separated domain sets (default "history,materials;upstream_history,materials")',
    )
    parser.add_argument("--sample-interval", type=float, default=0.05, help="RSS sample period, s (default 0.05)")
    parser.add_argument("--timeout", type=float, default=1800.0, help="time limit of one variant run, s")
    parser.add_argument("--redis-url", help="Redis to use (default: REDIS_URL's server, database 14)")
    parser.add_argument("--prefix", help="Redis key prefix (default bench-<random>); deleted at the end")
    parser.add_argument("--no-markdown", action="store_true", help="write no Markdown (the JSON and plot only)")
    parser.add_argument(
        "--targets", type=Path, metavar="FILE", help="TOML overriding targets.toml (same shape, only what changes)"
    )
    parser.add_argument(
        "--target",
        action="append",
        default=[],
        metavar="ID=LIMIT",
        help="override one target's limit, e.g. health_p99=75 or rss_vs_baseline=1/25 (repeatable)",
    )
    parser.add_argument("--profile", action=argparse.BooleanOptionalAction, help="cProfile the job function")
    parser.add_argument(
        "--no-http", action="store_true", help="skip the checks against a real server (and the MSD case)"
    )
    parser.add_argument(
        "--msd",
        action=argparse.BooleanOptionalAction,
        help="--msd: run the MSD case alone (a backward MSD analysis over the warehouse's whole span, stage by "
        "stage through a real server, against the same job without analysis and the seed's baseline); "
        "--no-msd: leave it out. Default: it is part of the full and the --quick run",
    )
    parser.add_argument(
        "--domain-costs",
        action=argparse.BooleanOptionalAction,
        help="what each query_tool domain's query costs per id at the largest size, fetched and counted "
        "(the floor's way): the jobs domain against history. Default: part of every run but --msd",
    )
    parser.add_argument("--health-samples", type=int, help="most /health probes under load (default 1000)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar while building the warehouse")


def resolve_plan(args: argparse.Namespace, cwd: Path | None = None) -> Plan:
    """The options with every default filled in and every path absolute (ValueError on bad targets)."""
    from trace_tools.bench.checkout import base_dir
    from trace_tools.bench.space import default_redis_url, new_prefix
    from trace_tools.bench.targets import load_targets

    where = Path.cwd() if cwd is None else cwd
    targets_file = (where / args.targets).resolve() if args.targets else None
    load_targets(targets_file, args.target)  # refuse bad overrides before anything starts
    quick = bool(args.quick)
    lots = args.lots or (10_000 if quick else 120_000)
    base, found = base_dir(cwd)
    work_dir = (where / args.work_dir).resolve() if args.work_dir else base / WORK_DIR
    if args.docs_dir:
        docs_dir, docs_from = (where / args.docs_dir).resolve(), "--docs-dir"
    elif quick:
        docs_dir, docs_from = work_dir, "--quick: the work dir"
    else:
        docs_dir, docs_from = base / DOCS_DIR, f"docs/ of {found}"
    msd_only = bool(args.msd)
    msd = args.msd is not False
    if msd and args.no_http:
        if msd_only:
            raise ValueError("--msd drives its stages through a real server: it cannot run with --no-http")
        msd = False  # the MSD case needs the server; --no-http leaves it out
    stem = (QUICK_STEM if quick else FULL_STEM) + ("-msd" if msd_only else "")
    return Plan(
        quick=quick,
        lots=lots,
        seed=args.seed,
        warehouse=(where / args.warehouse).resolve() if args.warehouse else work_dir / f"warehouse-{lots}.sqlite",
        work_dir=work_dir,
        docs_dir=docs_dir,
        docs_dir_from=docs_from,
        sizes=args.sizes or (QUICK_SIZES if quick else FULL_SIZES),
        domain_sets=args.domain_sets or tuple(list(s) for s in (DOMAIN_SETS[:1] if quick else DOMAIN_SETS)),
        sample_interval=args.sample_interval,
        timeout_s=args.timeout,
        redis_url=args.redis_url or default_redis_url(),
        prefix=args.prefix or new_prefix(),
        output=docs_dir / f"{stem}.json",
        markdown=None if args.no_markdown else docs_dir / f"{QUICK_STEM if quick else FULL_STEM}.md",
        plot=docs_dir / f"{QUICK_STEM if quick else FULL_STEM}-rss.png",
        profile=False if msd_only else (not quick) if args.profile is None else args.profile,
        http=not args.no_http and not msd_only,
        first_records_runs=1 if quick else 3,
        read_repeats=1 if quick else 5,
        health_jobs=2,
        health_clients=8,
        health_samples=args.health_samples or (100 if quick else 1000),
        health_idle_samples=20 if quick else 100,
        health_interval=0.05,
        health_max_seconds=60.0 if quick else 600.0,
        msd=msd,
        msd_only=msd_only,
        msd_reaggregation_runs=3 if quick else 5,
        domain_costs=not msd_only and args.domain_costs is not False,
        quiet=args.quiet,
        targets_file=targets_file,
        target_overrides=tuple(args.target),
    )
