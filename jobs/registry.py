"""Job kinds → job functions, by dotted path.

The embedding service lists its kinds in PoolConfig.job_kinds, e.g.
``{"trace-events": "sanic_trace.trace.job:run_events"}``. Strings, not function objects:
the config must pickle, jobs/ must never import the service statically, and a child imports
only the one module its job needs, by name, at its own start.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from typing import Any

from jobs.config import PoolConfig
from jobs.errors import UnknownJobKind

JobFunction = Callable[..., dict[str, Any] | None]


def split_path(path: str) -> tuple[str, str]:
    module, _, name = path.partition(":")
    if not module or not name:
        raise ValueError(f"{path!r} is not 'package.module:function'")
    return module, name


def resolve(path: str) -> JobFunction:
    """Import `package.module:function` and return the function (ImportError/AttributeError propagate)."""
    module_name, attr = split_path(path)
    target: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        target = getattr(target, part)
    if not callable(target):
        raise TypeError(f"{path} is not callable")
    return target


def function_for(config: PoolConfig, kind: str) -> JobFunction:
    try:
        path = config.job_kinds[kind]
    except KeyError:
        raise UnknownJobKind(f"no job function is registered for kind {kind!r}") from None
    return resolve(path)


def missing_modules(config: PoolConfig) -> list[str]:
    """Kinds whose module can't be found — checked without importing it (the supervisor stays lean)."""
    missing = []
    for kind, path in config.job_kinds.items():
        module_name, _ = split_path(path)
        try:
            found = importlib.util.find_spec(module_name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(f"{kind} ({module_name})")
    return missing
