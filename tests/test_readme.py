"""README's "The API in one minute" runs as it stands against the demo: the default demo warehouse
size, config/demo.env, a real `sanic-trace serve`. Only the port of its first line is replaced.

What it prints is checked against the warehouse itself (plain SQL), and its job really is a job
that was still running when its stream was read.
"""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
from pathlib import Path

import pytest

from sanic_trace.cli import DEMO_LOTS
from support.redis_keys import own_prefix
from support.servers import TRACE_CLI, ServerProcess
from support.warehouses import DemoWarehouses

ROOT = Path(__file__).resolve().parent.parent
API_LINE = "api=http://127.0.0.1:8080/api/trace"


def readme_block() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## The API in one minute") :]
    match = re.search(r"```sh\n(.*?)```", section, re.S)
    assert match, "no sh block under 'The API in one minute'"
    assert match.group(1).startswith(API_LINE + "\n")
    return match.group(1)


@pytest.fixture(scope="module")
def demo_warehouse(demo_warehouses: DemoWarehouses) -> Path:
    return demo_warehouses(DEMO_LOTS)


def test_the_api_in_one_minute_runs_verbatim_against_the_demo(demo_warehouse: Path, redis_url: str) -> None:
    with own_prefix(redis_url) as prefix:
        env = {"TRACE_DB_URL": f"sqlite:///{demo_warehouse}", "REDIS_URL": redis_url, "TRACE_REDIS_PREFIX": prefix}
        argv = [TRACE_CLI, "serve", "--env-file", str(ROOT / "config" / "demo.env"), "--port", "{port}"]
        with ServerProcess(env, argv=argv) as server:
            script = readme_block().replace(API_LINE, f"api=http://127.0.0.1:{server.port}/api/trace", 1)
            result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=180, cwd=ROOT)
    assert result.returncode == 0 and not result.stderr, result.stderr
    lines = result.stdout.splitlines()

    with sqlite3.connect(demo_warehouse) as db:
        seeds = db.execute(
            "SELECT COUNT(DISTINCT H.CONTAINERID) FROM DW_MES_LOTWIPHISTORY H "
            "JOIN (SELECT DISTINCT WORKCENTERNAME FROM DW_MES_SPEC_WORKCENTER_V WHERE WORKCENTER_GROUP = '測試') W "
            "ON W.WORKCENTERNAME = H.WORKCENTERNAME "
            "WHERE H.TRACKINTIMESTAMP >= '2026-01-05 00:00:00' AND H.TRACKINTIMESTAMP < '2026-02-05 00:00:00'"
        ).fetchone()[0]
    assert seeds > 1000, "the demo month must be over the demo's job threshold"
    assert lines[0].startswith(f"{seeds} seeds, first: {{'container_id': "), lines[0]
    assert re.fullmatch(r"\d+ containers, \d+ ancestors", lines[1]), lines[1]
    assert re.fullmatch(r"\{'history': \d+, 'rejects': \d+\}", lines[2]), lines[2]
    status, _ = lines[3].split(" ", 1)
    assert status in ("queued", "started"), lines[3]  # the stream below was read while the job ran

    # Progress lines are keep-alives (docs/api.md): one comes first while the job is still queued.
    stream = [line for line in lines[4:] if line.startswith('{"type":') and not line.startswith('{"type":"progress"')]
    kinds = [re.match(r'\{"type":"(\w+)"', line).group(1) for line in stream]  # type: ignore[union-attr]
    assert kinds[0] == "meta" and kinds[-1] == "complete", kinds
    assert kinds.count("domain_start") == 2 and kinds.count("domain_end") == 2 and kinds.count("records") > 10
    page = json.loads(lines[-1])
    assert page["domain"] == "upstream_history" and page["offset"] == 1000 and len(page["data"]) == 2
    assert page["total"] > 1002
