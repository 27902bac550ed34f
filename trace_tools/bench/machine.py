"""What the figures were measured on: the machine, the software, and how busy it was."""

from __future__ import annotations

import os
import platform
import sqlite3
import sys
from typing import Any

import psutil
import redis


def machine_facts(client: redis.Redis) -> dict[str, Any]:
    try:
        redis_version = client.info("server").get("redis_version")
    except redis.RedisError:
        redis_version = None
    return {
        "cpus": os.cpu_count(),
        "ram_mb": round(psutil.virtual_memory().total / 2**20),
        "available_mb_at_start": round(psutil.virtual_memory().available / 2**20),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "sqlite": sqlite3.sqlite_version,
        "redis_server": redis_version,
    }


def load_average() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]
