"""Alerts and incidents for analysts: filtered pages, one incident with its evidence, verdicts, status.

Writes run in their own transaction (committed before the route answers) and lock the incident row
(SELECT ... FOR UPDATE), so two analysts acting at once are applied one after the other.

Status lifecycle: open -> acknowledged -> resolved (open -> resolved directly is allowed; nothing
moves backwards: the grouping trigger never adds alerts to a resolved incident, later alerts of the
same actor and pattern open a new one). A verdict resolves the incident: the analyst has decided,
so it leaves the work queue; a later verdict on the same incident replaces the current one and
both stay in incident_verdicts, the labels the retraining DAG reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.engine import Connection

from serving.db import alerts, incident_verdicts, incidents
from serving.schemas import AlertRecord, IncidentRecord, VerdictIn, VerdictRecord

NEXT_STATUSES = {"open": {"acknowledged", "resolved"}, "acknowledged": {"resolved"}, "resolved": set()}


class IncidentNotFound(LookupError):
    pass


class InvalidTransition(ValueError):
    pass


@dataclass(frozen=True)
class AlertFilters:
    pattern: str | None = None
    domain: str | None = None
    severity: str | None = None
    since: datetime | None = None  # event_time >= since


@dataclass(frozen=True)
class IncidentFilters:
    pattern: str | None = None
    domain: str | None = None
    severity: str | None = None
    status: str | None = None
    since: datetime | None = None  # last_event_time >= since: incidents still active since then


def _where_alerts(query: Select[Any], f: AlertFilters) -> Select[Any]:
    if f.pattern is not None:
        query = query.where(alerts.c.pattern == f.pattern)
    if f.domain is not None:
        query = query.where(alerts.c.domain == f.domain)
    if f.severity is not None:
        query = query.where(alerts.c.severity == f.severity)
    if f.since is not None:
        query = query.where(alerts.c.event_time >= f.since)
    return query


def _where_incidents(query: Select[Any], f: IncidentFilters) -> Select[Any]:
    for column, value in ((incidents.c.pattern, f.pattern), (incidents.c.domain, f.domain),
                          (incidents.c.severity, f.severity), (incidents.c.status, f.status)):
        if value is not None:
            query = query.where(column == value)
    if f.since is not None:
        query = query.where(incidents.c.last_event_time >= f.since)
    return query


def list_alerts(conn: Connection, f: AlertFilters, limit: int, offset: int) -> tuple[list[AlertRecord], int]:
    """Newest event first; total counts every match regardless of the page."""
    total = conn.execute(_where_alerts(select(func.count()).select_from(alerts), f)).scalar_one()
    rows = conn.execute(_where_alerts(select(alerts), f)
                        .order_by(alerts.c.event_time.desc(), alerts.c.alert_id).limit(limit).offset(offset))
    return [AlertRecord.model_validate(dict(r._mapping)) for r in rows], int(total)


def list_incidents(conn: Connection, f: IncidentFilters, limit: int,
                   offset: int) -> tuple[list[IncidentRecord], int]:
    """Most recent activity first (last_event_time), ties broken by id so pages never overlap."""
    total = conn.execute(_where_incidents(select(func.count()).select_from(incidents), f)).scalar_one()
    rows = conn.execute(_where_incidents(select(incidents), f)
                        .order_by(incidents.c.last_event_time.desc(), incidents.c.incident_id)
                        .limit(limit).offset(offset))
    return [IncidentRecord.model_validate(dict(r._mapping)) for r in rows], int(total)


def _incident(conn: Connection, incident_id: str, lock: bool = False) -> IncidentRecord:
    query = select(incidents).where(incidents.c.incident_id == incident_id)
    row = conn.execute(query.with_for_update() if lock else query).first()
    if row is None:
        raise IncidentNotFound(f"no incident {incident_id!r}; list them with GET /incidents")
    return IncidentRecord.model_validate(dict(row._mapping))


def get_incident(conn: Connection,
                 incident_id: str) -> tuple[IncidentRecord, list[AlertRecord], list[VerdictRecord]]:
    """The incident, its alerts (oldest first) and its verdict history (oldest first)."""
    incident = _incident(conn, incident_id)
    alert_rows = conn.execute(select(alerts).where(alerts.c.incident_id == incident_id)
                              .order_by(alerts.c.event_time, alerts.c.alert_id))
    verdict_rows = conn.execute(select(incident_verdicts)
                                .where(incident_verdicts.c.incident_id == incident_id)
                                .order_by(incident_verdicts.c.verdict_id))
    return (incident, [AlertRecord.model_validate(dict(r._mapping)) for r in alert_rows],
            [VerdictRecord.model_validate(dict(r._mapping)) for r in verdict_rows])


def record_verdict(conn: Connection, incident_id: str, verdict: VerdictIn) -> IncidentRecord:
    """Set the incident's verdict, resolve it, append to the history; one transaction."""
    with conn.begin():
        _incident(conn, incident_id, lock=True)
        now = func.clock_timestamp()
        conn.execute(incidents.update().where(incidents.c.incident_id == incident_id).values(
            verdict=verdict.verdict, verdict_note=verdict.note, verdict_by=verdict.analyst, verdict_at=now,
            status="resolved", updated_at=now))
        conn.execute(incident_verdicts.insert().values(incident_id=incident_id, verdict=verdict.verdict,
                                                       note=verdict.note, analyst=verdict.analyst))
        return _incident(conn, incident_id)


def change_status(conn: Connection, incident_id: str, status: str) -> IncidentRecord:
    """Move along open -> acknowledged -> resolved; the same status again is a no-op."""
    with conn.begin():
        current = _incident(conn, incident_id, lock=True)
        if status == current.status:
            return current
        if status not in NEXT_STATUSES[current.status]:
            raise InvalidTransition(f"incident {incident_id} is {current.status}; it can move to "
                                    f"{sorted(NEXT_STATUSES[current.status]) or 'nothing (final)'}, not "
                                    f"{status}")
        conn.execute(incidents.update().where(incidents.c.incident_id == incident_id)
                     .values(status=status, updated_at=func.clock_timestamp()))
        return _incident(conn, incident_id)
