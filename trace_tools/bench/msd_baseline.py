"""The MSD case's baseline: the seed's way of aggregating — every row held, grouped, then attributed.

The seed's MSD page fetched the events of both domains it attributes over (upstream_history and
materials) for the seeds' whole closure, held every row of both, grouped them by container, and
only then attributed: for each detection lot and each upstream machine (and material) that some
container of its closure ran on, the lot's input and defects were added to that factor. This
reproduces that design with this project's queries and record building (the same SQL files,
`build_records`, the lineage stage's own walk), as `baseline.py` does for the plain events job:

- rows: per domain, per IN-batch, every row in one list (fetchall-style, gathered from the
  service's public fetchmany stream), a dict per row, all of them accumulated and kept;
- grouped: a dict CONTAINERID -> list of that container's records, per domain (sharing the
  record dicts, so a conservative copy: the seed held DataFrames and copies);
- genealogy: `trace.lineage.backward_lineage` over the detection lots — the lineage stage's
  result as the seed held it (seed -> ancestors);
- attributed: per lot, the set of upstream machines (WORKCENTER_GROUP, EQUIPMENTNAME,
  EQUIPMENTID) and materials (part, lot) over its closure's grouped records, then per factor the
  sums of DETECTION_LOT_COUNT, INPUT_QTY and DEFECT_QTY (docs/msd.md §4, without a loss-reason
  filter).

The detection facts (which lots were tested, their input and defects) come from
`msd.population.read_population`, the analysis's own reader: they are not what is measured.
What is not reproduced: scores, suspects, wafer roots, charts, the joined lot facts of a
machine row, the daily trend. The machine numbers it does compute are compared with the MSD
job's attribution by the bench (`attribution_check` in the report).
"""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import date
from typing import Any

import numpy as np

from sanic_trace.db.batching import in_batches
from sanic_trace.db.source import open_source
from sanic_trace.msd.population import read_population
from sanic_trace.trace.events import DOMAIN_SPECS
from sanic_trace.trace.lineage import backward_lineage
from sanic_trace.trace.records import build_records
from sanic_trace.trace.stations import read_station_groups, resolve_detection
from trace_tools.bench.baseline import fetch_all

DOMAINS = ("upstream_history", "materials")


def run_msd_baseline(task: dict[str, Any]) -> dict[str, Any]:
    """`task`: settings, container_ids (the closure the MSD job reads), seeds, station, start_date, end_date."""
    started = time.perf_counter()
    source = open_source(task["settings"])
    held: list[Any] = []  # every structure the seed's route kept alive until the end
    try:
        rows: dict[str, list[dict[str, Any]]] = {}
        for domain in DOMAINS:
            spec = DOMAIN_SPECS[domain]
            sql = source.sql.load(spec.sql_name)
            accumulated: list[dict[str, Any]] = []
            for batch in in_batches(task["container_ids"], source.in_batch_size):
                columns, fetched = fetch_all(source, sql, batch)
                accumulated.extend(build_records(columns, fetched, spec.derive))
            rows[domain] = accumulated
        fetched_at = time.perf_counter()

        grouped: dict[str, dict[str, list[dict[str, Any]]]] = {}
        for domain, records in rows.items():
            by_container: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for record in records:
                by_container[record["CONTAINERID"]].append(record)
            grouped[domain] = by_container
        held.append((rows, grouped))
        grouped_at = time.perf_counter()

        detection = resolve_detection(task["station"], read_station_groups(source))
        population = read_population(
            source,
            task["seeds"],
            detection,
            date.fromisoformat(task["start_date"]),
            date.fromisoformat(task["end_date"]),
        )
        population_at = time.perf_counter()
        lineage = backward_lineage(source, population.lot_ids)
        held.append(lineage)
        lineage_at = time.perf_counter()
    finally:
        source.close()

    # Per lot: its defects (no loss-reason filter) and input.
    defects = np.bincount(population.defect_lot, weights=population.defect_qty, minlength=population.size)
    first_order, spec_groups = detection.first_order, detection.spec_groups
    history, materials = grouped["upstream_history"], grouped["materials"]
    ancestors = lineage["ancestors"]
    machines: dict[tuple[Any, ...], list[float]] = {}
    material_sums: dict[tuple[Any, ...], list[float]] = {}
    for i, lot in enumerate(population.lot_ids):
        lot_input, lot_defects = float(population.input[i]), float(defects[i])
        exposed_machines: set[tuple[Any, ...]] = set()
        exposed_materials: set[tuple[Any, ...]] = set()
        for container in (lot, *ancestors.get(lot, ())):
            for record in history.get(container, ()):
                order = record["WORKCENTERSEQUENCE_GROUP"]
                if order is not None and order < first_order:
                    exposed_machines.add(
                        (record["WORKCENTER_GROUP"], record["EQUIPMENTNAME"] or "", record["EQUIPMENTID"])
                    )
            for record in materials.get(container, ()):
                placed = spec_groups.get(record["SPECNAME"])
                if placed is not None and placed[1] < first_order:
                    exposed_materials.add((record["MATERIALPARTNAME"] or "", record["MATERIALLOTNAME"]))
        for factors, sums in ((exposed_machines, machines), (exposed_materials, material_sums)):
            for factor in factors:
                entry = sums.get(factor)
                if entry is None:
                    entry = sums[factor] = [0, 0.0, 0.0]
                entry[0] += 1
                entry[1] += lot_input
                entry[2] += lot_defects
    done = time.perf_counter()
    counts = {domain: len(records) for domain, records in rows.items()}
    return {
        "domains": counts,
        "total_records": sum(counts.values()),
        "lot_count": population.size,
        "closure_containers": len(task["container_ids"]),
        "machine_count": len(machines),
        "material_count": len(material_sums),
        # (group, name, id, lots, input, defects) and (part, lot, lots, input, defects): compared with the
        # MSD job's attribution by the bench, then dropped from the report.
        "machines": [[*key, int(v[0]), v[1], v[2]] for key, v in machines.items()],
        "materials": [[*key, int(v[0]), v[1], v[2]] for key, v in material_sums.items()],
        "work_s": done - started,
        "fetch_s": fetched_at - started,
        "group_s": grouped_at - fetched_at,
        "population_s": population_at - grouped_at,
        "lineage_s": lineage_at - population_at,
        "attribute_s": done - lineage_at,
    }
