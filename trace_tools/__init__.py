"""Tools that drive the service from outside: `bench` (benchmarks) and `loadtest` (a load harness).

Not part of the service: they use its public surface (the HTTP API, the settings, the pool's
client functions) and need packages the service does not (the `tools` extra). `sanic-trace`
offers their subcommands and says which extra to install when one of those packages is missing.
"""

# Modules the tools import beyond the service's own dependencies (setup.py's `tools` extra).
# Checked before a tool is offered, since a tool may import them only deep inside a run.
REQUIRED_MODULES = ("httpx",)


def missing_modules() -> list[str]:
    """The required modules that cannot be imported here."""
    from importlib.util import find_spec

    return [name for name in REQUIRED_MODULES if find_spec(name) is None]
