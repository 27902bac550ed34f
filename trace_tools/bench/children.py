"""Running a bench variant in a child process of its own, with the RSS sampler on it.

The baseline and the floor run in fresh `spawn` children — as the job path's child is a
fresh interpreter — so that each one's memory is its own and is sampled the same way.
The target is a module-level function (spawn pickles it by name) taking one picklable
task and returning a picklable result; its exception comes back as text.
"""

from __future__ import annotations

import multiprocessing
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from trace_tools.bench.sampler import RssSampler, RssTrace


class ChildFailed(RuntimeError):
    """The variant raised, died, or ran past its time limit."""


@dataclass
class ChildRun:
    result: dict[str, Any]
    trace: RssTrace
    wall_s: float  # process start → process gone, as the job path's submit → finished


def _child_main(target: Callable[[Any], dict[str, Any]], task: Any, conn: Connection) -> None:
    try:
        outcome: tuple[str, Any] = ("ok", target(task))
    except BaseException:  # noqa: BLE001 - everything goes back to the parent as text
        outcome = ("error", traceback.format_exc())
    try:
        conn.send(outcome)
    finally:
        conn.close()


def run_in_child(
    target: Callable[[Any], dict[str, Any]], task: Any, *, sample_interval: float, timeout_s: float
) -> ChildRun:
    """Run target(task) in a spawn child sampled every sample_interval; kill it past timeout_s."""
    ctx = multiprocessing.get_context("spawn")
    receiver, sender = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child_main, args=(target, task, sender), name="bench-variant", daemon=True)
    sampler = RssSampler(sample_interval).start()
    started = time.perf_counter()
    try:
        proc.start()
        sender.close()  # the child holds the only writing end now: EOF means it died
        sampler.attach(proc.pid)  # type: ignore[arg-type]
        if not receiver.poll(timeout_s):
            raise ChildFailed(f"{getattr(target, '__name__', target)} ran past {timeout_s:g} s")
        try:
            status, value = receiver.recv()
        except EOFError:
            raise ChildFailed(f"the child died without a result (exit code {proc.exitcode})") from None
        proc.join(timeout=60)
        wall = time.perf_counter() - started
    finally:
        trace = sampler.stop()
        receiver.close()
        if proc.is_alive():
            proc.kill()
            proc.join(timeout=10)
    if status != "ok":
        raise ChildFailed(f"{getattr(target, '__name__', target)} failed in its child:\n{value}")
    return ChildRun(value, trace, wall)


def variant_figures(result: dict[str, Any], trace: RssTrace, wall_s: float) -> dict[str, Any]:
    """A variant's result with its measured figures: records/s, peak RSS, CPU seconds."""
    records = result["total_records"]
    return {
        **result,
        "records": records,
        "wall_s": wall_s,
        "records_per_s": records / wall_s if wall_s > 0 else None,
        "peak_rss_mb": trace.peak_mb,
        "cpu_s": trace.cpu_s,
        "records_per_cpu_s": records / trace.cpu_s if trace.cpu_s else None,
        "start_rss_mb": trace.first_mb,
        "rss_samples": len(trace.samples),
    }
