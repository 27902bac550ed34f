"""The RSS-over-time plot of the largest case, ours against the baseline (matplotlib, if installed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def draw_rss_plot(cases: list[dict[str, Any]], path: Path) -> str | None:
    """Draw one panel per domain set; None on success, else why the plot was skipped."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # no display on a server
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed; the RSS series are in the JSON (rss_series)"
    drawn = [c for c in cases if c.get("rss_series")]
    if not drawn:
        return "no RSS series were recorded"
    figure, axes = plt.subplots(len(drawn), 1, figsize=(9, 3.6 * len(drawn)), squeeze=False)
    for axis, case in zip(axes[:, 0], drawn):
        for variant, style in (("baseline", "tab:red"), ("ours", "tab:blue"), ("floor", "tab:gray")):
            series = case["rss_series"].get(variant)
            if series:
                axis.plot([p[0] for p in series], [p[1] for p in series], label=variant, color=style)
        axis.set_title(f"{case['cids']:,} container ids, {' + '.join(case['domains'])}")
        axis.set_xlabel("seconds since the process started")
        axis.set_ylabel("RSS (MB, process + children)")
        axis.grid(True, alpha=0.3)
        axis.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return None
