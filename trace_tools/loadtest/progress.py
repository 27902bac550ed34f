"""The live progress line on stderr.

On a terminal one line is rewritten in place about once a second. When stderr is a file or
a pipe (CI logs, `2> run.log`) carriage returns would pile up into one huge line, so a
plain line is written every 10 seconds instead.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from typing import TextIO

from trace_tools.loadtest.stats import Stats

TTY_INTERVAL = 1.0
LOG_INTERVAL = 10.0


def progress_line(stats: Stats, duration: float, memory: str = "") -> str:
    elapsed = stats.elapsed()
    rps = stats.requests / elapsed if elapsed > 0 else 0.0
    status = stats.status_counts
    line = (
        f"[{elapsed:6.1f}s/{duration:.0f}s] req {stats.requests} ({rps:.1f}/s)  errors {stats.error_total()}"
        f"  202 {status[202]}  429 {status[429]}  503 {status[503]}  streams {stats.active_streams}"
    )
    return f"{line}  {memory}" if memory else line


async def show_progress(
    stats: Stats,
    duration: float,
    stop: asyncio.Event,
    memory: Callable[[], str] = lambda: "",
    stream: TextIO | None = None,
) -> None:
    out = stream or sys.stderr
    tty = out.isatty()
    interval = TTY_INTERVAL if tty else LOG_INTERVAL
    try:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), interval)
            except TimeoutError:
                pass
            text = progress_line(stats, duration, memory())
            out.write(f"\r{text}\x1b[K" if tty else f"{text}\n")
            out.flush()
    finally:
        if tty:
            out.write("\n")
            out.flush()
