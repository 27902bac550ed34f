"""Every setting of the service: its environment name, type, default, range and meaning.

This module is the one place a setting is defined. `config/sanic-trace.env.example`
documents the same names for operators; a test keeps the two in step.

Values are validated when the service starts: a bad value raises `SettingsError`
naming the variable, the value and what is accepted, and the service exits non-zero.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from jobs.config import name_problem
from sanic_trace.db.url import parse_db_url

DEFAULT_DEMO_DB_PATH = "var/demo-warehouse.sqlite"


class SettingsError(Exception):
    """A setting has a value the service cannot run with.

    Deliberately not a ValueError: Sanic's CLI swallows ValueError raised by a
    `--factory` and exits 0, which would hide a misconfiguration from systemd.
    """


@dataclass(frozen=True)
class Spec:
    env: str
    kind: type
    default: Any
    doc: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] | None = None


def _int(env: str, default: int, doc: str, lo: int, hi: int) -> Any:
    return field(default=default, metadata={"spec": Spec(env, int, default, doc, lo, hi)})


def _float(env: str, default: float, doc: str, lo: float, hi: float) -> Any:
    return field(default=default, metadata={"spec": Spec(env, float, default, doc, lo, hi)})


def _str(env: str, default: str, doc: str, choices: tuple[str, ...] | None = None) -> Any:
    return field(default=default, metadata={"spec": Spec(env, str, default, doc, choices=choices)})


@dataclass(frozen=True)
class Settings:
    """Every setting, declared once: attribute, type, environment name, default, range and meaning.

    The declaration order is the order of the env example file.
    """

    # --- connections -------------------------------------------------------------
    db_url: str = _str(
        "TRACE_DB_URL",
        f"sqlite:///{DEFAULT_DEMO_DB_PATH}",
        "Warehouse to query: sqlite:///PATH (the demo warehouse; relative paths are "
        "relative to the working directory) or oracle://USER:PASSWORD@HOST:PORT/SERVICE.",
    )
    redis_url: str = _str("REDIS_URL", "redis://127.0.0.1:6379/0", "Redis for jobs, results, caches and rate limits.")
    redis_prefix: str = _str("TRACE_REDIS_PREFIX", "trace", "Prefix of every Redis key the service writes.")
    # --- database access ---------------------------------------------------------
    db_fetchmany_size: int = _int(
        "DB_FETCHMANY_SIZE", 5000, "Rows per cursor.fetchmany() batch (and Oracle arraysize/prefetchrows).", 1, 100_000
    )
    db_in_batch_size: int = _int(
        "DB_IN_BATCH_SIZE", 1000, "Ids per IN-list; Oracle refuses more than 1000 (ORA-01795).", 1, 1000
    )
    db_query_timeout_seconds: float = _float(
        "DB_QUERY_TIMEOUT_SECONDS", 60.0, "Limit for one database round trip (Oracle call_timeout).", 0.1, 86_400
    )
    db_pool_min: int = _int("DB_POOL_MIN", 1, "Oracle connection pool: connections kept open.", 0, 64)
    db_pool_max: int = _int("DB_POOL_MAX", 8, "Oracle connection pool: most connections at once.", 1, 256)
    # --- routing between the inline path and jobs ---------------------------------
    async_cid_threshold: int = _int(
        "TRACE_ASYNC_CID_THRESHOLD",
        20_000,
        "Events requests with more container ids than this run as jobs.",
        1,
        10_000_000,
    )
    events_cid_limit: int = _int(
        "TRACE_EVENTS_CID_LIMIT",
        50_000,
        "Most container ids an events request may have when it cannot run as a job (413 beyond).",
        1,
        10_000_000,
    )
    stream_batch_size: int = _int(
        "TRACE_STREAM_BATCH_SIZE",
        5000,
        "Records per stored result chunk and per streamed NDJSON records line.",
        1,
        100_000,
    )
    inline_max_concurrency: int = _int(
        "TRACE_INLINE_MAX_CONCURRENCY",
        4,
        "Database queries one HTTP worker runs at once in threads; beyond it 429 TOO_BUSY.",
        1,
        256,
    )
    # --- job pool -------------------------------------------------------------------
    worker_count: int = _int(
        "TRACE_WORKER_COUNT", 2, "Jobs one host runs at once (job slots), each in its own child process.", 1, 64
    )
    job_queue_max: int = _int("TRACE_JOB_QUEUE_MAX", 100, "Most queued jobs; beyond it 429 JOB_QUEUE_FULL.", 1, 100_000)
    job_ttl_seconds: int = _int(
        "TRACE_JOB_TTL_SECONDS", 3600, "How long a job's status and result stay in Redis after it ends.", 1, 30 * 86_400
    )
    job_timeout_seconds: float = _float(
        "TRACE_JOB_TIMEOUT_SECONDS", 1800.0, "A job running longer is killed (JOB_TIMEOUT).", 1, 7 * 86_400
    )
    job_max_rss_mb: int = _int(
        "TRACE_JOB_MAX_RSS_MB",
        2048,
        "A job child (with its own children) above this RSS is killed (JOB_MEMORY_LIMIT).",
        16,
        1_048_576,
    )
    min_available_mb: int = _int(
        "TRACE_MIN_AVAILABLE_MB",
        1024,
        "Below this much available memory (host or cgroup), jobs are refused (MEMORY_PRESSURE) and queued ones wait.",
        0,
        1_048_576,
    )
    job_shutdown_grace_seconds: float = _float(
        "TRACE_JOB_SHUTDOWN_GRACE_SECONDS",
        10.0,
        "On stop, how long running jobs may finish before they are killed (JOB_INTERRUPTED).",
        0,
        3600,
    )
    supervisor_heartbeat_seconds: float = _float(
        "TRACE_SUPERVISOR_HEARTBEAT_SECONDS",
        2.0,
        "How often a supervisor proves it is alive; its jobs are orphaned after three missed beats.",
        0.1,
        60,
    )
    host_id: str = _str(
        "TRACE_HOST_ID", "", "Name of this host's supervisor in Redis (default: the machine's host name)."
    )
    # --- results ------------------------------------------------------------------------
    result_page_max_limit: int = _int(
        "TRACE_RESULT_PAGE_MAX_LIMIT", 10_000, "Largest `limit` a paginated result read may ask for.", 1, 1_000_000
    )
    stream_keepalive_seconds: float = _float(
        "TRACE_STREAM_KEEPALIVE_SECONDS",
        5.0,
        "A live job stream with nothing new sends a progress line this often.",
        0.5,
        300,
    )
    # --- caches -------------------------------------------------------------------------
    cache_ttl_seconds: int = _int(
        "TRACE_CACHE_TTL_SECONDS",
        300,
        "Lifetime of cached seed-resolve, lineage and small events responses (0: off).",
        0,
        86_400,
    )
    cache_skip_cid_threshold: int = _int(
        "TRACE_CACHE_SKIP_CID_THRESHOLD",
        10_000,
        "Events responses for more ids than this are not cached.",
        0,
        10_000_000,
    )
    # --- protection -----------------------------------------------------------------------
    rate_limit_window_seconds: int = _int(
        "TRACE_RATE_LIMIT_WINDOW_SECONDS", 60, "Window of the per-client-IP rate limits.", 1, 3600
    )
    rate_limit_seed_resolve: int = _int(
        "TRACE_RATE_LIMIT_SEED_RESOLVE",
        120,
        "seed-resolve requests per client IP per window (0: no limit).",
        0,
        1_000_000,
    )
    rate_limit_lineage: int = _int(
        "TRACE_RATE_LIMIT_LINEAGE", 120, "lineage requests per client IP per window (0: no limit).", 0, 1_000_000
    )
    rate_limit_events: int = _int(
        "TRACE_RATE_LIMIT_EVENTS", 60, "events requests per client IP per window (0: no limit).", 0, 1_000_000
    )
    rate_limit_jobs: int = _int(
        "TRACE_RATE_LIMIT_JOBS",
        1200,
        "job status/stream/result/cancel requests per client IP per window (0: no limit).",
        0,
        1_000_000,
    )
    request_max_bytes: int = _int(
        "TRACE_REQUEST_MAX_BYTES",
        16 * 1024 * 1024,
        "Largest request body (413 PAYLOAD_TOO_LARGE beyond); 114,000 ids take about 2.5 MB.",
        1024,
        1024 * 1024 * 1024,
    )
    msd_max_range_days: int = _int(
        "TRACE_MSD_MAX_RANGE_DAYS", 366, "Longest date range a mid-section-defect seed-resolve may ask for.", 1, 3660
    )
    msd_loss_reason_days: int = _int(
        "TRACE_MSD_LOSS_REASON_DAYS",
        730,
        "The MSD page's loss-reason list holds the reasons rejected within this many days.",
        1,
        36_600,
    )
    sql_override_dir: str = _str(
        "TRACE_SQL_OVERRIDE_DIR",
        "",
        "Fault injection: a directory whose <query>.sql files replace the packaged queries of the same name. "
        "Leave empty in production.",
    )
    job_step_delay_seconds: float = _float(
        "TRACE_JOB_STEP_DELAY_SECONDS",
        0.0,
        "Testing and demos: a trace job pauses this long after each stored chunk and after each IN-batch, "
        "so a live stream can be watched filling. Keep 0 in production.",
        0,
        60,
    )
    # --- the HTTP server ---------------------------------------------------------------
    host: str = _str("TRACE_HOST", "127.0.0.1", "Address `sanic-trace serve` listens on.")
    port: int = _int("TRACE_PORT", 8080, "Port `sanic-trace serve` listens on.", 1, 65_535)
    http_workers: int = _int("TRACE_HTTP_WORKERS", 1, "Sanic HTTP worker processes of `sanic-trace serve`.", 1, 64)
    proxies_count: int = _int(
        "TRACE_PROXIES_COUNT",
        0,
        "Reverse proxies in front of the service that append the client address to X-Forwarded-For: with N, "
        "rate limits and logs use the address N entries from the right (the one the outermost trusted proxy "
        "saw). 0: the socket peer; set it only when every request comes through the proxies.",
        0,
        16,
    )
    real_ip_header: str = _str(
        "TRACE_REAL_IP_HEADER",
        "",
        "A header a trusted reverse proxy sets to the client address (e.g. X-Real-IP); empty: none.",
    )
    forwarded_secret: str = _str(
        "TRACE_FORWARDED_SECRET",
        "",
        "Trust RFC 7239 Forwarded headers that carry secret=<this value> (set by your proxy); empty: none.",
    )
    log_level: str = _str("TRACE_LOG_LEVEL", "INFO", "Log level.", choices=("DEBUG", "INFO", "WARNING", "ERROR"))

    @property
    def effective_host_id(self) -> str:
        return self.host_id or socket.gethostname()


# attribute name -> Spec, read off the declaration above.
SPECS: dict[str, Spec] = {f.name: f.metadata["spec"] for f in fields(Settings)}


def format_number(value: float) -> str:
    """A bound or default as people write it: 10000000, 1048576, 0.1 — never 1e+07."""
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def accepted_range(spec: Spec) -> str:
    return f"{format_number(spec.minimum)} to {format_number(spec.maximum)}"  # type: ignore[arg-type]


def _parse(spec: Spec, raw: str) -> Any:
    text = raw.strip()
    if spec.kind is str:
        value: Any = text
        if spec.choices is not None:
            value = text.upper()
            if value not in spec.choices:
                raise SettingsError(f"{spec.env}={raw!r} is not accepted: use one of {', '.join(spec.choices)}")
        return value
    try:
        value = spec.kind(text)
    except ValueError:
        kind = "an integer" if spec.kind is int else "a number"
        raise SettingsError(
            f"{spec.env}={raw!r} is not {kind}: use {kind} from {accepted_range(spec)}"
        ) from None
    if value != value:  # NaN
        raise SettingsError(f"{spec.env}={raw!r} is not a number")
    if (spec.minimum is not None and value < spec.minimum) or (spec.maximum is not None and value > spec.maximum):
        raise SettingsError(f"{spec.env}={raw!r} is out of range: accepted {accepted_range(spec)}")
    return value


def read_env_file(path: str | os.PathLike[str]) -> dict[str, str]:
    """Parse a systemd-style environment file: KEY=VALUE lines, # comments, optional quotes."""
    values: dict[str, str] = {}
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise SettingsError(f"cannot read env file {path}: {exc.strerror}") from None
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :]
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise SettingsError(f"{path}:{number}: expected KEY=VALUE, got {line!r}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def load_settings(environ: Mapping[str, str] | None = None, env_file: str | None = None) -> Settings:
    """Build validated settings. The process environment wins over the env file.

    `TRACE_ENV_FILE` in the environment names an env file too, so that Sanic's own
    CLI (`sanic sanic_trace.app:create_app --factory`) can be pointed at one.
    """
    environ = dict(os.environ if environ is None else environ)
    env_file = env_file or environ.get("TRACE_ENV_FILE") or None
    merged: dict[str, str] = {}
    if env_file:
        merged.update(read_env_file(env_file))
    merged.update(environ)

    values: dict[str, Any] = {}
    for name, spec in SPECS.items():
        raw = merged.get(spec.env)
        # An empty value means "not set": env files often carry `NAME=` placeholders.
        values[name] = spec.default if raw is None or raw.strip() == "" else _parse(spec, raw)
    settings = Settings(**values)
    _check_relations(settings)
    return settings


def _check_relations(s: Settings) -> None:
    try:
        parse_db_url(s.db_url)
    except ValueError as exc:
        # The URL may carry a password: name the scheme, not the value.
        shown = s.db_url.split("@", 1)[-1] if "@" in s.db_url else s.db_url
        raise SettingsError(f"TRACE_DB_URL={shown!r} is not accepted: {exc}") from None
    if not (
        s.redis_url.startswith("redis://") or s.redis_url.startswith("rediss://") or s.redis_url.startswith("unix://")
    ):
        raise SettingsError(f"REDIS_URL={s.redis_url!r} is not accepted: use redis://HOST:PORT/DB")
    # The pool's own rule for names that go into Redis keys, checked here so that a bad value stops
    # start-up with the variable's name instead of failing later inside the pool.
    for env, value in (("TRACE_REDIS_PREFIX", s.redis_prefix), ("TRACE_HOST_ID", s.effective_host_id)):
        problem = name_problem(value)
        if problem:
            raise SettingsError(f"{env}={value!r} is not accepted: it {problem}")
    if s.db_pool_min > s.db_pool_max:
        raise SettingsError(f"DB_POOL_MIN={s.db_pool_min} is out of range: accepted 0 to DB_POOL_MAX ({s.db_pool_max})")
    # What the pool receives is validated now too, by the pool's own rules: a problem the checks
    # above missed still stops start-up here, as a SettingsError, never later inside the pool.
    from sanic_trace.pool import pool_config

    try:
        pool_config(s)
    except ValueError as exc:
        raise SettingsError(f"the job pool cannot run with these settings: {exc}") from None


ENV_EXAMPLE_HEADER = """\
# sanic-trace settings. Every variable the service reads, with its default.
# Copy to /etc/sanic-trace/sanic-trace.env (systemd) or pass with `sanic-trace serve --env-file FILE`.
# The process environment wins over this file. A bad value stops the service with a message
# naming the variable (exit status 2). Generated from sanic_trace/settings.py:
#   python -m sanic_trace.settings > config/sanic-trace.env.example
"""


def render_env_example() -> str:
    """config/sanic-trace.env.example: every setting with its meaning, range and default."""
    import textwrap

    parts = [ENV_EXAMPLE_HEADER]
    for spec in SPECS.values():
        doc = spec.doc
        if spec.minimum is not None:
            doc += f" Range: {accepted_range(spec)}."
        if spec.choices is not None:
            doc += f" One of: {', '.join(spec.choices)}."
        default = format_number(spec.default) if spec.kind in (int, float) else spec.default
        comment = textwrap.fill(doc, width=100, initial_indent="# ", subsequent_indent="# ", break_on_hyphens=False)
        parts.append(f"\n{comment}\n{spec.env}={default}\n")
    return "".join(parts)


if __name__ == "__main__":
    print(render_env_example(), end="")
