"""The git checkout the bench is run in: where its outputs go by default, and the code stamp.

Both come from git run in the *working directory* (`git rev-parse --show-toplevel`), never
from where the tools are installed: an install into site-packages has no checkout, and the
commit of the code measured is the one of the tree the operator runs the bench in. Outside
a checkout the defaults fall back to the working directory and the stamp says "unknown".
"""

from __future__ import annotations

import subprocess
from importlib.util import find_spec
from pathlib import Path
from typing import Any

UNKNOWN = "unknown"
# The code a bench measures (the service and the pool) and the code measuring it.
MEASURED_PATHS = ("sanic_trace", "jobs", "trace_tools")


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=True).stdout


def checkout_root(cwd: Path | None = None) -> Path | None:
    """The top of the git work tree that `cwd` (default: the working directory) is in; None outside one."""
    where = Path.cwd() if cwd is None else cwd
    try:
        top = _git(where, "rev-parse", "--show-toplevel").strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return Path(top) if top else None


def base_dir(cwd: Path | None = None) -> tuple[Path, str]:
    """What default output paths are relative to, and how it was found (for the bench's notes)."""
    where = (Path.cwd() if cwd is None else cwd).resolve()
    root = checkout_root(where)
    if root is not None:
        return root, f"the git checkout {root} (found from the working directory)"
    return where, f"the working directory {where} (not a git checkout)"


def code_version(cwd: Path | None = None) -> dict[str, Any]:
    """The commit of the checkout in `cwd`, the measured files that differ from it, and whether
    the sanic_trace that runs is that checkout's (an editable install) or another copy.

    Outside a checkout: commit "unknown", no checkout.
    """
    root = checkout_root(cwd)
    if root is None:
        return {"commit": UNKNOWN, "checkout": None, "modified": [], "runs_checkout_code": None}
    try:
        commit = _git(root, "rev-parse", "HEAD").strip() or UNKNOWN
        status = _git(root, "status", "--porcelain", "--", *MEASURED_PATHS)
    except (OSError, subprocess.SubprocessError):  # e.g. a fresh repository without a commit
        return {"commit": UNKNOWN, "checkout": str(root), "modified": [], "runs_checkout_code": None}
    spec = find_spec("sanic_trace")
    origin = Path(spec.origin).resolve() if spec is not None and spec.origin else None
    return {
        "commit": commit,
        "checkout": str(root),
        "modified": [line[3:] for line in status.splitlines()],
        "runs_checkout_code": None if origin is None else origin.is_relative_to(root.resolve()),
    }
