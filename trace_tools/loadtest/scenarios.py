"""The dashboard sessions a virtual user walks: seed-resolve → lineage → events.

Each scenario is one session and returns its outcome ("completed", or "empty" when the
seeds matched nothing so there was nothing to trace). A failed call raises RequestFailed
(already counted) and ends the session, as the dashboard would stop at an error.

- dashboard: an engineer in the query tool types 1-5 lot ids, a work order or 1-2 wafer lots
  → forward lineage → the five default domains (history, materials, rejects, holds, jobs).
  Small: answered inline.
- msd: a quality engineer's mid-section-defect query over 1..--msd-max-days days of the
  window that has data → backward lineage → upstream_history + materials. Inline or a job,
  depending on how many containers the range brings in.
- large: MSD over the whole discovered window → backward lineage → events for the first
  --large-ids containers: over the server's async threshold, so a 202 and a live job stream.
- mixed: each session picks one of the above by --mix weights.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, timedelta

from trace_tools.loadtest import bodies
from trace_tools.loadtest import stats as names
from trace_tools.loadtest.calls import Caller
from trace_tools.loadtest.discovery import SeedPool

SEED_RESOLVE_PATH = "/api/trace/seed-resolve"
LINEAGE_PATH = "/api/trace/lineage"

# How often the query tool is used with each kind of input (lot ids are what people type most).
RESOLVE_WEIGHTS = {"lot_id": 6, "work_order": 2.5, "wafer_lot": 1.5}
DEFAULT_MIX = {"dashboard": 6.0, "msd": 3.0, "large": 1.0}


@dataclass
class ScenarioSettings:
    msd_max_days: int
    large_ids: int


@dataclass
class Session:
    """What a scenario needs: the user's caller and random source, the seeds, the settings."""

    caller: Caller
    rng: random.Random
    pool: SeedPool
    settings: ScenarioSettings


async def dashboard(s: Session) -> str:
    kind, values = _query_tool_input(s.rng, s.pool)
    answer = await s.caller.post_json(names.SEED_RESOLVE, SEED_RESOLVE_PATH, bodies.by_values(kind, values))
    seeds = bodies.seed_ids(answer)
    if not seeds:
        return "empty"
    tree = await s.caller.post_json(names.LINEAGE, LINEAGE_PATH, bodies.lineage("query_tool", seeds))
    await s.caller.events(bodies.events("query_tool", bodies.lineage_ids(tree), seeds))
    return "completed"


async def msd(s: Session) -> str:
    start, end = _msd_range(s.rng, s.pool.span, s.settings.msd_max_days)
    return await _msd_session(s, start, end, limit=None)


async def large(s: Session) -> str:
    return await _msd_session(s, *s.pool.window, limit=s.settings.large_ids)


async def _msd_session(s: Session, start: str, end: str, limit: int | None) -> str:
    answer = await s.caller.post_json(names.SEED_RESOLVE, SEED_RESOLVE_PATH, bodies.msd_range(start, end))
    seeds = bodies.seed_ids(answer)
    if not seeds:
        return "empty"
    tree = await s.caller.post_json(names.LINEAGE, LINEAGE_PATH, bodies.lineage("mid_section_defect", seeds))
    ids = bodies.lineage_ids(tree)
    if limit is not None:
        if len(ids) < limit:
            # The warehouse has fewer containers than asked: send all of them and say so.
            s.caller.stats.notes["large sessions short of --large-ids"] += 1
        ids = ids[:limit]
    kept = set(ids)
    totals = await s.caller.events(bodies.events("mid_section_defect", ids, [i for i in seeds if i in kept]))
    if limit is not None and not totals.via_job:
        # The server's TRACE_ASYNC_CID_THRESHOLD is at or above the ids sent: not what `large` is for.
        s.caller.stats.notes["large sessions answered inline"] += 1
    return "completed"


def _query_tool_input(rng: random.Random, pool: SeedPool) -> tuple[str, list[str]]:
    choices = {"lot_id": pool.lot_names, "work_order": pool.work_orders, "wafer_lot": pool.wafer_lots}
    kinds = [k for k, values in choices.items() if values]
    kind = rng.choices(kinds, weights=[RESOLVE_WEIGHTS[k] for k in kinds])[0]
    values = choices[kind]
    most = {"lot_id": 5, "work_order": 1, "wafer_lot": 2}[kind]
    return kind, rng.sample(values, rng.randint(1, min(most, len(values))))


def _msd_range(rng: random.Random, span: tuple[str, str], max_days: int) -> tuple[str, str]:
    first, last = date.fromisoformat(span[0]), date.fromisoformat(span[1])
    total = (last - first).days + 1
    length = rng.randint(1, max(1, min(max_days, total)))
    start = first + timedelta(days=rng.randint(0, total - length))
    return start.isoformat(), (start + timedelta(days=length - 1)).isoformat()


Scenario = Callable[[Session], Awaitable[str]]
SCENARIOS: dict[str, Scenario] = {"dashboard": dashboard, "msd": msd, "large": large}


def parse_mix(text: str) -> dict[str, float]:
    """'dashboard=6,msd=3,large=1' → weights; ValueError on unknown names or no positive weight."""
    weights: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or name not in SCENARIOS:
            raise ValueError(f"expected NAME=WEIGHT with NAME in {', '.join(SCENARIOS)}; got {part!r}")
        weight = float(value)
        if weight < 0:
            raise ValueError(f"weights must not be negative; got {part!r}")
        weights[name] = weight
    if not any(w > 0 for w in weights.values()):
        raise ValueError("at least one scenario needs a positive weight")
    return {k: v for k, v in weights.items() if v > 0}


def picker(scenario: str, mix: dict[str, float]) -> Callable[[random.Random], str]:
    """How a user chooses its next session: always the same one, or by weight for `mixed`."""
    if scenario != "mixed":
        return lambda rng: scenario
    scenario_names = list(mix)
    weights = [mix[n] for n in scenario_names]
    return lambda rng: rng.choices(scenario_names, weights=weights)[0]
