"""Pieces of the pool that need no Redis: import isolation, ids and keys, config, probes, formatting."""

from __future__ import annotations

import ast
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from jobs import ACTIVE, TERMINAL, JobKeys, PoolConfig, PoolKeys, Status, is_valid_job_id, new_job_id
from jobs.document import job_document
from jobs.logfmt import kv
from jobs.memory import available_memory_mb, cgroup_headroom_bytes, process_tree_rss_mb
from support.processes import pid_gone
from support.waits import wait_for

JOBS_DIR = Path(__file__).resolve().parents[2] / "jobs"
FORBIDDEN = ("sanic", "sanic_trace")


def test_importing_jobs_loads_neither_sanic_nor_the_service() -> None:
    code = (
        "import sys, jobs, jobs.child, jobs.supervisor, jobs.client, jobs.store, jobs.memory, jobs.context,"
        " jobs.registry, jobs.process, jobs.outcome, jobs.link, jobs.host;"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('sanic', 'sanic_trace'));"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == ""


def test_no_module_of_jobs_imports_sanic_statically() -> None:
    offenders = []
    for path in JOBS_DIR.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in FORBIDDEN]
    assert offenders == []


def test_statuses_are_named_not_spelled() -> None:
    """No status word as a string literal in jobs/ outside jobs/status.py (a document's field names aside)."""
    words = {status.value for status in Status}
    offenders = []
    for path in JOBS_DIR.rglob("*.py"):
        if path.name == "status.py":
            continue
        tree = ast.parse(path.read_text(), str(path))
        field_names = {id(key) for node in ast.walk(tree) if isinstance(node, ast.Dict) for key in node.keys}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and node.value in words and id(node) not in field_names:
                offenders.append(f"{path.name}:{node.lineno}: {node.value!r}")
    assert offenders == []
    assert ACTIVE | TERMINAL == set(Status) and not ACTIVE & TERMINAL
    assert "queued" in ACTIVE and Status("cancelled") in TERMINAL  # statuses read back as text compare equal


def test_job_ids_are_128_bit_hex_and_validated() -> None:
    ids = {new_job_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(i) == 32 and is_valid_job_id(i) for i in ids)
    for bad in ("", "x" * 32, "A" * 32, "a" * 31, "a" * 33, "../" + "a" * 29, "{" + "a" * 30 + "}", "a*", None, 7):
        assert not is_valid_job_id(bad), bad
    with pytest.raises(ValueError):
        JobKeys("trace", "not-an-id")


def test_every_key_of_a_job_carries_its_id_as_a_hash_tag() -> None:
    job_id = new_job_id()
    keys = JobKeys("trace", job_id)
    assert keys.job == f"trace:job:{{{job_id}}}"
    assert keys.request == f"trace:job:{{{job_id}}}:request"
    assert keys.notify == f"trace:job:{{{job_id}}}:notify"
    assert keys.data("chunk:history:3") == f"trace:job:{{{job_id}}}:chunk:history:3"
    for reserved in ("request", "notify", "keyset", "keyset:x", ""):
        with pytest.raises(ValueError):
            keys.data(reserved)
    pool = PoolKeys("trace")
    assert (pool.queue, pool.hosts, pool.running("a"), pool.heartbeat("a")) == (
        "trace:queue",
        "trace:hosts",
        "trace:running:a",
        "trace:host:a",
    )


def test_config_pickles_and_rejects_nonsense() -> None:
    config = PoolConfig("redis://x/1", job_kinds={"k": "m:f"}, import_paths=["/a"], host_id="h1")
    again = pickle.loads(pickle.dumps(config))
    assert again == config
    assert dict(again.job_kinds) == {"k": "m:f"} and again.import_paths == ("/a",)
    with pytest.raises(TypeError):
        config.job_kinds["x"] = "y"  # type: ignore[index]
    for bad in (
        {"worker_count": 0},
        {"rss_sample_interval": 0.5},
        {"prefix": "a{b}"},
        {"host_id": "a:b"},
        {"job_kinds": {"k": "no_function"}},
        {"soft_rss_fraction": 1.5},
        {"job_timeout_seconds": 0},
    ):
        with pytest.raises(ValueError):
            PoolConfig("redis://x/1", **bad)  # type: ignore[arg-type]


def _cgroup_tree(tmp_path: Path, proc_line: str, files: dict[str, str]) -> tuple[str, str]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    proc = tmp_path / "cgroup"
    proc.write_text(proc_line)
    root = tmp_path / "fs"
    for name, text in files.items():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return str(proc), str(root)


def test_cgroup_v2_headroom(tmp_path: Path) -> None:
    proc, root = _cgroup_tree(tmp_path, "0::/svc\n", {"svc/memory.max": "1000000\n", "svc/memory.current": "400000"})
    assert cgroup_headroom_bytes(proc, root) == 600000
    proc, root = _cgroup_tree(tmp_path / "b", "0::/\n", {"memory.max": "max\n", "memory.current": "5"})
    assert cgroup_headroom_bytes(proc, root) is None


def test_cgroup_v1_headroom(tmp_path: Path) -> None:
    files = {"memory/memory.limit_in_bytes": "2000", "memory/memory.usage_in_bytes": "500"}
    proc, root = _cgroup_tree(tmp_path, "4:memory:/not/visible/here\n", files)
    assert cgroup_headroom_bytes(proc, root) == 1500  # namespaced path missing: the mount root answers
    unlimited = {"memory/memory.limit_in_bytes": "9223372036854771712", "memory/memory.usage_in_bytes": "1"}
    proc, root = _cgroup_tree(tmp_path / "b", "4:memory:/\n", unlimited)
    assert cgroup_headroom_bytes(proc, root) is None


def test_available_memory_is_plausible() -> None:
    available = available_memory_mb()
    assert 0 < available <= psutil.virtual_memory().total / 2**20


def test_process_tree_rss_counts_descendants() -> None:
    own = process_tree_rss_mb(os.getpid())
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; b = b'x' * (80 << 20); time.sleep(30)"], stdout=subprocess.DEVNULL
    )
    try:
        wait_for(lambda: (process_tree_rss_mb(os.getpid()) or 0) > (own or 0) + 70, 10, "the child's 80 MB to count")
    finally:
        child.kill()
        child.wait()
    assert process_tree_rss_mb(child.pid) is None or pid_gone(child.pid)


def test_status_document_shape() -> None:
    job_id = new_job_id()
    t0 = time.time() - 10
    raw = {
        b"status": b"finished",
        b"kind": b"k",
        b"created_at": repr(t0).encode(),
        b"started_at": repr(t0 + 2),
        "finished_at": repr(t0 + 5),
        "result": '{"n": 1}',
        "done": "3",
        "phase": "x",
        "peak_rss_mb": "40.5",
    }
    doc = job_document(job_id, raw, None)
    assert doc["status"] == "finished" and doc["result"] == {"n": 1}
    assert doc["progress"] == {"phase": "x", "done": 3, "total": None, "records": None}
    assert doc["elapsed_seconds"] == 5.0 and doc["run_seconds"] == 3.0
    assert doc["created_at"].endswith("Z") and "T" in doc["created_at"]
    failed = job_document(job_id, {"status": "failed", "error_code": "JOB_TIMEOUT", "error_message": "m"}, None)
    assert failed["error"] == {"code": "JOB_TIMEOUT", "message": "m"} and "result" not in failed
    running = job_document(job_id, {"status": "started", "host": "h", "pid": "12"}, None)
    assert (running["host"], running["pid"]) == ("h", 12)
    queued = job_document(job_id, {"status": "queued"}, 4)
    assert queued["queue_position"] == 4 and "host" not in queued


def test_log_lines_are_key_value() -> None:
    line = kv("job_ended", job_id="ab", duration_s=1.23456, message='a "b" c', skipped=None)
    assert line == 'event=job_ended job_id=ab duration_s=1.235 message="a \\"b\\" c"'
