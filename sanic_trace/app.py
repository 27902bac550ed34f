"""create_app(): the Sanic application — settings, listeners, blueprints, error handler.

Runs under Sanic's own CLI (`sanic sanic_trace.app:create_app --factory`) and under
`sanic-trace serve`. A bad setting stops start-up with exit status 2 either way.
"""

from __future__ import annotations

import logging
import sys

import redis.asyncio as aioredis
from sanic import Sanic

from jobs import AsyncJobClient
from sanic_trace.api import error_handler, health, job_routes, msd_routes, request_meta, trace
from sanic_trace.api.protection import DatabaseSlots, RateLimiter
from sanic_trace.compat import fix_shutdown_during_startup
from sanic_trace.db.source import open_source
from sanic_trace.pool import embed_supervisor, pool_config
from sanic_trace.settings import Settings, SettingsError, load_settings

log = logging.getLogger("sanic_trace")

APP_NAME = "sanic_trace"


def _settings_or_exit(settings: object) -> Settings:
    # Sanic's CLI calls a factory with its argparse namespace: anything but Settings means "read them".
    if isinstance(settings, Settings):
        return settings
    try:
        return load_settings()
    except SettingsError as exc:
        print(f"sanic-trace: invalid configuration: {exc}", file=sys.stderr, flush=True)
        # SystemExit, not ValueError: Sanic's CLI would log a ValueError and exit 0.
        raise SystemExit(2) from None


def configure_logging(level: str) -> None:
    """Our loggers (sanic_trace, jobs) go to the root handler; Sanic's keep their own handlers."""
    logging.getLogger("sanic_trace").setLevel(level)
    logging.getLogger("jobs").setLevel(level)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # Sanic's loggers print through handlers of their own; letting them propagate to the root
    # handler as well would print every server line twice.
    for name, logger in list(logging.root.manager.loggerDict.items()):
        if name.startswith("sanic.") and isinstance(logger, logging.Logger) and logger.handlers:
            logger.propagate = False


def create_app(
    settings: Settings | object | None = None, *, name: str = APP_NAME, with_supervisor: bool = True
) -> Sanic:
    """The service. `with_supervisor=False` serves HTTP only (another process runs this host's pool)."""
    settings = _settings_or_exit(settings)
    fix_shutdown_during_startup()
    app = Sanic(name)
    configure_logging(settings.log_level)  # after Sanic(): it installs its own logging config
    app.config.REQUEST_MAX_SIZE = settings.request_max_bytes
    # Streams of large jobs legitimately run for as long as the job does.
    app.config.RESPONSE_TIMEOUT = settings.job_timeout_seconds + 600
    app.config.NOISY_EXCEPTIONS = False
    # Behind a reverse proxy: which forwarded address Sanic takes as request.remote_addr.
    app.config.PROXIES_COUNT = settings.proxies_count
    app.config.REAL_IP_HEADER = settings.real_ip_header or None
    app.config.FORWARDED_SECRET = settings.forwarded_secret or None
    app.ctx.settings = settings

    error_handler.install(app)
    request_meta.install(app)
    health.install(app)
    app.blueprint(trace.bp)
    app.blueprint(job_routes.bp)
    app.blueprint(msd_routes.bp)
    app.ctx.pool_config = pool_config(settings)
    if with_supervisor:
        embed_supervisor(app, settings)

    @app.before_server_start
    async def open_connections(app: Sanic) -> None:
        app.ctx.source = open_source(settings)
        app.ctx.redis = aioredis.Redis.from_url(
            settings.redis_url, socket_connect_timeout=2, socket_timeout=10, health_check_interval=30
        )
        app.ctx.rate_limiter = RateLimiter(app.ctx.redis, settings.redis_prefix, settings.rate_limit_window_seconds)
        app.ctx.db_slots = DatabaseSlots(settings.inline_max_concurrency)
        app.ctx.jobs = AsyncJobClient(app.ctx.redis, app.ctx.pool_config)

    @app.after_server_stop
    async def close_connections(app: Sanic) -> None:
        app.ctx.db_slots.close()
        await app.ctx.redis.aclose()
        app.ctx.source.close()

    return app
