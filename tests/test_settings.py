"""Settings: defaults, validation messages naming the variable, env files, exit status of both CLIs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sanic_trace.settings import SPECS, SettingsError, load_settings, render_env_example

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "config" / "sanic-trace.env.example"


def test_defaults_named_by_the_issue() -> None:
    s = load_settings({})
    assert (s.db_fetchmany_size, s.db_in_batch_size, s.db_query_timeout_seconds) == (5000, 1000, 60.0)
    assert (s.async_cid_threshold, s.events_cid_limit, s.stream_batch_size) == (20_000, 50_000, 5000)
    assert (s.job_ttl_seconds, s.job_timeout_seconds, s.worker_count) == (3600, 1800.0, 2)
    assert (s.cache_ttl_seconds, s.cache_skip_cid_threshold) == (300, 10_000)
    assert s.db_url == "sqlite:///var/demo-warehouse.sqlite"


@pytest.mark.parametrize(
    ("env", "value", "expected"),
    [
        ("DB_IN_BATCH_SIZE", "1001", r"DB_IN_BATCH_SIZE='1001' is out of range: accepted 1 to 1000"),
        ("DB_IN_BATCH_SIZE", "0", r"DB_IN_BATCH_SIZE='0' is out of range"),
        ("DB_FETCHMANY_SIZE", "many", r"DB_FETCHMANY_SIZE='many' is not an integer"),
        ("DB_QUERY_TIMEOUT_SECONDS", "nan", r"DB_QUERY_TIMEOUT_SECONDS='nan' is not a number"),
        ("TRACE_WORKER_COUNT", "-1", r"TRACE_WORKER_COUNT='-1' is out of range"),
        ("TRACE_LOG_LEVEL", "LOUD", r"TRACE_LOG_LEVEL='LOUD' is not accepted: use one of DEBUG"),
        ("TRACE_DB_URL", "postgres://x", r"TRACE_DB_URL='postgres://x' is not accepted"),
        ("REDIS_URL", "localhost:6379", r"REDIS_URL='localhost:6379' is not accepted"),
        ("TRACE_REDIS_PREFIX", "a:b", r"TRACE_REDIS_PREFIX='a:b' is not accepted"),
        # The pool's own rules for names in Redis keys are checked here too, not later in the pool.
        ("TRACE_REDIS_PREFIX", "tr*ce", r"TRACE_REDIS_PREFIX='tr\*ce' is not accepted: it must not contain '\*'"),
        ("TRACE_HOST_ID", "a:b", r"TRACE_HOST_ID='a:b' is not accepted: it must not contain ':'"),
        ("TRACE_HOST_ID", "h{1}", r"TRACE_HOST_ID='h\{1\}' is not accepted: it must not contain '\{' '\}'"),
        ("TRACE_JOB_MAX_RSS_MB", "2000000", r"TRACE_JOB_MAX_RSS_MB='2000000' is out of range: accepted 16 to 1048576$"),
        ("TRACE_ASYNC_CID_THRESHOLD", "x", r"is not an integer: use an integer from 1 to 10000000$"),
    ],
)
def test_bad_value_names_variable_value_and_range(env: str, value: str, expected: str) -> None:
    with pytest.raises(SettingsError, match=expected):
        load_settings({env: value})


def test_every_spec_validates_its_bounds() -> None:
    for spec in SPECS.values():
        if spec.maximum is None:
            continue
        too_big = str(int(spec.maximum) + 1)
        with pytest.raises(SettingsError, match=re.escape(spec.env)):
            load_settings({spec.env: too_big})


def test_env_file_read_and_environment_wins(tmp_path: Path) -> None:
    env_file = tmp_path / "svc.env"
    text = "# comment\nDB_FETCHMANY_SIZE=123\nexport TRACE_WORKER_COUNT='3'\nTRACE_PORT=\n"
    env_file.write_text(text, encoding="utf-8")
    s = load_settings({"TRACE_WORKER_COUNT": "4"}, env_file=str(env_file))
    assert (s.db_fetchmany_size, s.worker_count, s.port) == (123, 4, 8080)


def test_env_file_bad_line_is_named(tmp_path: Path) -> None:
    env_file = tmp_path / "svc.env"
    env_file.write_text("NOT A SETTING LINE\n", encoding="utf-8")
    with pytest.raises(SettingsError, match=r"svc.env:1: expected KEY=VALUE"):
        load_settings({}, env_file=str(env_file))


def test_example_file_is_the_rendering_of_the_settings_declaration() -> None:
    assert EXAMPLE.read_text(encoding="utf-8") == render_env_example(), (
        "regenerate it: python -m sanic_trace.settings > config/sanic-trace.env.example"
    )
    assert "e+0" not in EXAMPLE.read_text(encoding="utf-8")


def test_example_file_documents_every_setting_with_its_default() -> None:
    documented: dict[str, str] = {}
    for line in EXAMPLE.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            documented[key] = value
    assert set(documented) == {spec.env for spec in SPECS.values()}
    for spec in SPECS.values():
        assert load_settings({spec.env: documented[spec.env]}) == load_settings({}), spec.env
    # The example itself must be a valid configuration.
    load_settings({}, env_file=str(EXAMPLE))


def _run(cmd: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, env={**os.environ, **env}, capture_output=True, text=True, timeout=60, cwd=ROOT)


def test_sanic_cli_factory_exits_non_zero_on_bad_setting() -> None:
    sanic = str(Path(sys.executable).parent / "sanic")
    result = _run([sanic, "sanic_trace.app:create_app", "--factory", "--port", "1"], {"DB_IN_BATCH_SIZE": "5000"})
    assert result.returncode == 2, result.stderr
    assert "DB_IN_BATCH_SIZE='5000' is out of range" in result.stderr


def test_sanic_trace_serve_exits_non_zero_on_bad_setting(tmp_path: Path) -> None:
    env_file = tmp_path / "bad.env"
    env_file.write_text("TRACE_JOB_TTL_SECONDS=forever\n", encoding="utf-8")
    cli = str(Path(sys.executable).parent / "sanic-trace")
    result = _run([cli, "serve", "--env-file", str(env_file), "--port", "1"], {})
    assert result.returncode == 2
    assert "TRACE_JOB_TTL_SECONDS='forever' is not an integer" in result.stderr


@pytest.mark.parametrize(("env", "value"), [("TRACE_REDIS_PREFIX", "tr*ce"), ("TRACE_HOST_ID", "a:b")])
@pytest.mark.parametrize("mode", ["serve", "single-process", "sanic-cli"])
def test_a_bad_pool_name_stops_every_run_mode_with_status_2(env: str, value: str, mode: str) -> None:
    bindir = Path(sys.executable).parent
    commands = {
        "serve": [str(bindir / "sanic-trace"), "serve", "--port", "1"],
        "single-process": [str(bindir / "sanic-trace"), "serve", "--single-process", "--port", "1"],
        "sanic-cli": [str(bindir / "sanic"), "sanic_trace.app:create_app", "--factory", "--port", "1"],
    }
    result = _run(commands[mode], {env: value})
    assert result.returncode == 2, result.stderr[-2000:]
    assert f"{env}={value!r} is not accepted" in result.stderr


def test_the_pool_receives_the_settings_and_the_job_payload_only_the_request() -> None:
    from sanic_trace.pool import JOB_KINDS, pool_config
    from sanic_trace.trace.events import EventsRequest

    settings = load_settings(
        {"TRACE_DB_URL": "oracle://u:secret@h:1521/S", "TRACE_WORKER_COUNT": "3", "TRACE_JOB_MAX_RSS_MB": "512"}
    )
    config = pool_config(settings)
    assert (config.worker_count, config.max_rss_mb, config.prefix) == (3, 512, settings.redis_prefix)
    assert dict(config.job_kinds) == JOB_KINDS
    # How to run a job reaches the child with the pool's config (a pipe), never through Redis...
    assert config.job_config is settings
    # ...and what Redis stores is the request alone: no URL, no password, no tuning.
    payload = EventsRequest("query_tool", ["a", "b"], ["history"], {"direction": "forward"}).to_payload()
    assert payload == {
        "profile": "query_tool",
        "container_ids": ["a", "b"],
        "domains": ["history"],
        "params": {"direction": "forward"},
        "seed_container_ids": [],
        "lineage": None,
        "lineage_query_id": None,
    }
    assert EventsRequest.from_payload(payload) == EventsRequest(
        "query_tool", ["a", "b"], ["history"], {"direction": "forward"}
    )


def test_a_bad_database_url_is_named_without_its_password() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({"TRACE_DB_URL": "oracle://user:hunter2@/"})
    assert "hunter2" not in str(caught.value) and "TRACE_DB_URL=" in str(caught.value)
