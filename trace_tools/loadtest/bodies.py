"""The request bodies a dashboard sends for each stage, and the ids it reads out of the answers.

Written against the HTTP contract only (sanic_trace/api/trace.py), not the server's modules:
the harness may drive a deployment of another version.
"""

from __future__ import annotations

from typing import Any


def seed_ids(answer: dict[str, Any]) -> list[str]:
    """Container ids of a seed-resolve answer, in its order."""
    return [s["container_id"] for s in answer.get("seeds", []) if isinstance(s, dict) and s.get("container_id")]


def lineage_ids(answer: dict[str, Any]) -> list[str]:
    """Every container of a lineage answer: its roots first, then every other node, sorted.

    The dashboard sends exactly this set to the events stage: the seeds and all their
    ancestors (backward, `parent_map`) or descendants (forward, `children_map`).
    """
    roots = [r for r in answer.get("roots", []) if isinstance(r, str)]
    edges = answer.get("parent_map") or answer.get("children_map") or {}
    others: set[str] = set(edges)
    for targets in edges.values():
        others.update(targets)
    others.difference_update(roots)
    return roots + sorted(others)


def by_values(resolve_type: str, values: list[str]) -> dict[str, Any]:
    """seed-resolve for the query tool: lot ids, work orders or wafer lots typed by a user."""
    return {"profile": "query_tool", "params": {"resolve_type": resolve_type, "values": values}}


def msd_range(start: str, end: str) -> dict[str, Any]:
    """seed-resolve for mid-section-defect: the lots tested at the (default) station in [start, end]."""
    return {"profile": "mid_section_defect", "params": {"date_range": [start, end]}}


def lineage(profile: str, ids: list[str]) -> dict[str, Any]:
    return {"profile": profile, "container_ids": ids}


def events(profile: str, ids: list[str], seeds: list[str], domains: list[str] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"profile": profile, "container_ids": ids, "seed_container_ids": seeds}
    if domains is not None:
        body["domains"] = domains
    return body
