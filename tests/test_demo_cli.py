"""`sanic-trace demo-db` as a user runs it: a fresh path, --reuse, a changed size, an unwritable path, logs."""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path

from support.servers import TRACE_CLI


def demo_db(*args: str) -> subprocess.CompletedProcess[str]:
    # stderr is a pipe here, as in a log: no progress bar may be drawn into it.
    return subprocess.run([TRACE_CLI, "demo-db", *args], capture_output=True, text=True, timeout=120)


def containers(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT COUNT(*) FROM DW_MES_CONTAINER").fetchone()[0]


def test_builds_into_missing_directories_then_reuses_then_rebuilds_for_another_size(tmp_path: Path) -> None:
    path = tmp_path / "var" / "nested" / "demo.sqlite"
    built = demo_db(str(path), "--lots", "300", "--seed", "2", "--reuse")
    assert built.returncode == 0, built.stderr
    n = containers(path)
    assert built.stdout == f"warehouse {path}: {n:,} containers (--lots 300 --seed 2; built)\n"
    assert "\r" not in built.stderr and "[#" not in built.stderr, built.stderr
    assert built.stderr.startswith(f"built {path} in ")

    mtime = path.stat().st_mtime_ns
    reused = demo_db(str(path), "--lots", "300", "--seed", "2", "--reuse")
    assert reused.returncode == 0
    assert reused.stdout == f"warehouse {path}: {n:,} containers (--lots 300 --seed 2; reused)\n"
    assert path.stat().st_mtime_ns == mtime

    bigger = demo_db(str(path), "--lots", "900", "--seed", "2", "--reuse")
    assert bigger.returncode == 0 and bigger.stdout.endswith("(--lots 900 --seed 2; built)\n"), bigger
    assert containers(path) > 2 * n
    other_seed = demo_db(str(path), "--lots", "900", "--seed", "3", "--reuse")
    assert other_seed.stdout.endswith("(--lots 900 --seed 3; built)\n"), other_seed
    # Without --reuse the file is always rebuilt.
    again = demo_db(str(path), "--lots", "900", "--seed", "3")
    assert again.stdout.endswith("; built)\n")


def test_a_file_that_is_not_a_demo_warehouse_is_rebuilt_not_reused(tmp_path: Path) -> None:
    path = tmp_path / "demo.sqlite"
    path.write_bytes(b"not a database")
    result = demo_db(str(path), "--lots", "300", "--reuse")
    assert result.returncode == 0 and result.stdout.endswith("; built)\n"), result
    assert containers(path) > 200


def test_an_unwritable_path_is_an_error_naming_it(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    path = blocker / "demo.sqlite"  # a directory that cannot exist: its parent is a file
    result = demo_db(str(path), "--lots", "300")
    assert result.returncode == 1
    assert result.stderr.startswith(f"sanic-trace demo-db: cannot write the demo warehouse {path}: "), result.stderr
    assert "Traceback" not in result.stderr


def test_plain_help_and_the_tools_offer_themselves_with_the_tools_extra_installed() -> None:
    result = subprocess.run([TRACE_CLI, "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    for command in ("serve", "demo-db", "bench", "loadtest"):
        assert command in result.stdout
    # httpx is installed in the test environment (the `tools` extra): the real tool answers.
    result = subprocess.run([TRACE_CLI, "loadtest", "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "--users" in result.stdout
