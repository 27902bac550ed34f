"""Station groups: the warehouse's route of work-center groups, and checking a named station.

A detection station (`params.station` of the MSD profile) is a station group
(WORKCENTER_GROUP) or one work center (WORKCENTERNAME). The groups come from
DW_MES_SPEC_WORKCENTER_V in route order (WORKCENTERSEQUENCE_GROUP); the table is small (a row
per spec), so it is read whole.
"""

from __future__ import annotations

from dataclasses import dataclass

from sanic_trace.db.batching import normalise_ids
from sanic_trace.db.source import DataSource
from sanic_trace.trace.params import invalid
from sanic_trace.trace.queries import column_index

STATION_GROUPS_SQL = "lookup_station_groups"


@dataclass(frozen=True)
class StationGroup:
    name: str
    order: int  # WORKCENTERSEQUENCE_GROUP: position in the route, 1 = first
    workcenters: tuple[str, ...]
    specs: tuple[str, ...]


def read_station_groups(source: DataSource) -> list[StationGroup]:
    """Every station group with its work centers and specs, in route order."""
    order: dict[str, int] = {}
    workcenters: dict[str, dict[str, None]] = {}
    specs: dict[str, dict[str, None]] = {}
    for columns, rows in source.stream(source.sql.load(STATION_GROUPS_SQL)):
        i_group, i_seq, i_wc, i_spec = column_index(
            columns, "WORKCENTER_GROUP", "WORKCENTERSEQUENCE_GROUP", "WORKCENTERNAME", "SPECNAME"
        )
        for row in rows:
            group = row[i_group]
            order.setdefault(group, int(row[i_seq]) if row[i_seq] is not None else 0)
            if row[i_wc] is not None:
                workcenters.setdefault(group, {})[row[i_wc]] = None
            if row[i_spec] is not None:
                specs.setdefault(group, {})[row[i_spec]] = None
    return [
        StationGroup(name, order[name], tuple(workcenters.get(name, ())), tuple(specs.get(name, ())))
        for name in sorted(order, key=lambda g: (order[g], g))
    ]


def station_names(station: str) -> list[str]:
    """The names of a station parameter: one name, or several joined with `,` (the newer dashboard)."""
    return normalise_ids(station.split(","))


@dataclass(frozen=True)
class Detection:
    """Where lots are tested: the detection work centers, and where in the route they sit."""

    stations: tuple[str, ...]  # the names as given (groups or work centers)
    workcenters: tuple[str, ...]
    first_order: int  # the smallest route order of a detection group: upstream is before it
    last_order: int  # the largest: downstream is after it
    spec_groups: dict[str, tuple[str, int]]  # every SPECNAME -> (its group, the group's order)


def resolve_detection(station: str, groups: list[StationGroup], field: str = "params.station") -> Detection:
    """Each name must be a known group or one of their work centers, else 400 naming the field and the groups."""
    names = station_names(station)
    workcenters: dict[str, None] = {}
    orders: list[int] = []
    for name in names:
        for group in groups:
            if name == group.name:
                workcenters.update(dict.fromkeys(group.workcenters))
                orders.append(group.order)
                break
            if name in group.workcenters:
                workcenters[name] = None
                orders.append(group.order)
                break
        else:
            known = ", ".join(group.name for group in groups) or "none (the warehouse has no station groups)"
            invalid(
                f"{field} {name!r} is not a known station group or work center; "
                f"station groups in route order: {known}"
            )
    if not names:
        invalid(f"{field} must name a station group or work center")
    spec_groups = {spec: (group.name, group.order) for group in groups for spec in group.specs}
    return Detection(tuple(names), tuple(workcenters), min(orders), max(orders), spec_groups)
