"""Tools that drive the service from outside: `bench` (benchmarks) and `loadtest` (a load harness).

Not part of the service: they need packages the service does not (the `tools` extra), and
`sanic-trace` offers their subcommands and says which extra to install when one of those
packages is missing. They use only the service's public surface.

The service surface the tools use (every name trace_tools imports from `sanic_trace` and
`jobs`; all public, none with a leading underscore; tests/test_trace_tools.py checks that this
list and the imports agree). A change to any of these must keep the tools working:

    jobs: ACTIVE, JobClient, JobContext, JobKeys, PoolConfig, Status, new_job_id, start_supervisor_thread
    sanic_trace.db.batching: in_batches
    sanic_trace.db.source: DataSource, open_source
    sanic_trace.demo.generator: build_demo_warehouse
    sanic_trace.msd.population: read_population
    sanic_trace.msd.run: normalise_params
    sanic_trace.msd.storage: aggregation_key
    sanic_trace.pool: TRACE_EVENTS_KIND, pool_config
    sanic_trace.results.layout: INDEX_SUFFIX, ResultIndex, chunk_suffix
    sanic_trace.settings: Settings, SettingsError, load_settings
    sanic_trace.trace.events: DOMAIN_SPECS, EventsRequest, default_domains, validate_domains
    sanic_trace.trace.job: run_events
    sanic_trace.trace.lineage: backward_lineage
    sanic_trace.trace.params: MSD, QUERY_TOOL
    sanic_trace.trace.queries: stream_in_batch
    sanic_trace.trace.records: build_records
    sanic_trace.trace.stations: read_station_groups, resolve_detection

Beyond the imports the bench relies on: the public attributes of those objects (Settings'
fields, PoolConfig.prefix / redis_url / shutdown_grace_seconds, the supervisor thread's
running_jobs / stop() / join(), DataSource.fetch_size and stream(), DOMAIN_SPECS entries'
sql_name / derive, ResultIndex.parse / domains / per_domain, JobKeys.data, JobClient.events(...).wait,
JobContext.job_id, EventsRequest.to_payload(), DataSource.sql / in_batch_size, a job status's
progress.phase, the MSD bench's Population.lot_ids / input / defect_lot / defect_qty / size,
Detection.first_order / spec_groups, backward_lineage's `ancestors`, ResultIndex.cid_count, and
the MSD aggregation's attribution / material_attribution rows); the command `python -m
sanic_trace.cli serve --single-process` and the TRACE_* / REDIS_URL settings it reads; and the
HTTP API (docs/api.md), which is all loadtest uses. bench/profiling.py groups profile rows by
service file names: a renamed file only moves its time to "other".
"""

# Modules the tools import beyond the service's own dependencies (setup.py's `tools` extra).
# Checked before a tool is offered, since a tool may import them only deep inside a run.
REQUIRED_MODULES = ("httpx",)


def missing_modules() -> list[str]:
    """The required modules that cannot be imported here."""
    from importlib.util import find_spec

    return [name for name in REQUIRED_MODULES if find_spec(name) is None]


def tools_version() -> str:
    """The installed sanic-trace distribution's version (the tools ship in it); "unknown" if not installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("sanic-trace")
    except PackageNotFoundError:
        return "unknown"
