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

import logging
import random
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from serving.db import alerts, incident_verdicts, incidents
from serving.schemas import AlertRecord, IncidentRecord, VerdictIn, VerdictRecord

log = logging.getLogger("patternalarm.incidents")
T = TypeVar("T")

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


# deadlock_detected, serialization_failure: PostgreSQL aborted the transaction to let a concurrent one
# through; the same transaction run again succeeds.
RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})
WRITE_ATTEMPTS = 4


def retry_conflicts(work: Callable[[], T], attempts: int = WRITE_ATTEMPTS) -> T:
    """Run the transaction ``work`` again when PostgreSQL aborted it as a deadlock victim.

    A fraud verdict locks the incident, then (trigger, migration 010) relabels the actor's windows;
    the window scorer locks windows, then (triggers, migration 004) updates the alerts and the
    incident they belong to. The two orders are inherent to what each does, so the database may
    abort one of them: the scorer retries its batch, and an analyst's verdict is retried here
    instead of answering 500."""
    for attempt in range(1, attempts + 1):
        try:
            return work()
        except DBAPIError as exc:
            if getattr(exc.orig, "sqlstate", None) not in RETRYABLE_SQLSTATES or attempt == attempts:
                raise
            log.warning("write aborted by the database (%s), attempt %d of %d; retrying",
                        str(exc.orig).strip().splitlines()[0], attempt, attempts)
            time.sleep(random.uniform(0.01, 0.05) * attempt)  # jitter: the other side goes first
    raise AssertionError("unreachable")


def record_verdict(conn: Connection, incident_id: str, verdict: VerdictIn) -> IncidentRecord:
    """Set the incident's verdict, resolve it, append to the history; one transaction, retried when
    the database aborts it for a deadlock (retry_conflicts)."""
    return retry_conflicts(lambda: _record_verdict(conn, incident_id, verdict))


def _record_verdict(conn: Connection, incident_id: str, verdict: VerdictIn) -> IncidentRecord:
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
    """Move along open -> acknowledged -> resolved; the same status again is a no-op (retried like a
    verdict when the database aborts it for a deadlock)."""
    return retry_conflicts(lambda: _change_status(conn, incident_id, status))


def _change_status(conn: Connection, incident_id: str, status: str) -> IncidentRecord:
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
