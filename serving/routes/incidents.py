"""GET /alerts, GET /incidents, GET /incidents/{id}, POST /incidents/{id}/verdict, POST .../status."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query

from serving import incidents
from serving.deps import ApiKeyDep, ConnDep
from serving.schemas import (
    AlertPublic,
    Domain,
    ErrorOut,
    IncidentDetailPublic,
    IncidentPublic,
    IncidentRecord,
    Page,
    Severity,
    Status,
    StatusIn,
    VerdictIn,
)

router = APIRouter(tags=["alerts and incidents"])

Limit = Annotated[int, Query(ge=1, le=500, description="page size")]
Offset = Annotated[int, Query(ge=0, le=10_000_000, description="rows to skip")]
Since = Annotated[datetime | None, Query(description="ISO-8601; alerts by event_time, incidents by "
                                                     "last_event_time")]
_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorOut}}
_WRITE_ERRORS: dict[int | str, dict[str, Any]] = {**_NOT_FOUND, 401: {"model": ErrorOut}, 403: {"model": ErrorOut}}


def _public(record: IncidentRecord) -> IncidentPublic:
    return IncidentPublic.model_validate(record.model_dump())


def _not_found(exc: incidents.IncidentNotFound) -> HTTPException:
    return HTTPException(status_code=404, detail=str(exc))


@router.get("/alerts", response_model=Page[AlertPublic])
def list_alerts(conn: ConnDep, pattern: str | None = None, domain: Domain | None = None,
                severity: Severity | None = None, since: Since = None, limit: Limit = 50,
                offset: Offset = 0) -> Page[AlertPublic]:
    """Alerts, newest event first."""
    rows, total = incidents.list_alerts(conn, incidents.AlertFilters(pattern, domain, severity, since),
                                        limit, offset)
    return Page[AlertPublic](items=[AlertPublic.model_validate(r.model_dump()) for r in rows], total=total,
                             limit=limit, offset=offset)


@router.get("/incidents", response_model=Page[IncidentPublic])
def list_incidents(conn: ConnDep, domain: Domain | None = None, pattern: str | None = None,
                   severity: Severity | None = None, status: Status | None = None, since: Since = None,
                   limit: Limit = 50, offset: Offset = 0) -> Page[IncidentPublic]:
    """Incidents, most recent activity first."""
    rows, total = incidents.list_incidents(
        conn, incidents.IncidentFilters(pattern, domain, severity, status, since), limit, offset)
    return Page[IncidentPublic](items=[_public(r) for r in rows], total=total, limit=limit, offset=offset)


@router.get("/incidents/{incident_id}", response_model=IncidentDetailPublic, responses=_NOT_FOUND)
def get_incident(conn: ConnDep, incident_id: str) -> IncidentDetailPublic:
    """One incident with its evidence, its alerts and its verdict history."""
    try:
        record, alert_rows, verdict_rows = incidents.get_incident(conn, incident_id)
    except incidents.IncidentNotFound as exc:
        raise _not_found(exc) from exc
    return IncidentDetailPublic.model_validate({
        **record.model_dump(),
        "alerts": [r.model_dump() for r in alert_rows],
        "verdicts": [v.model_dump() for v in verdict_rows],
    })


@router.post("/incidents/{incident_id}/verdict", response_model=IncidentPublic, responses=_WRITE_ERRORS)
def give_verdict(_: ApiKeyDep, conn: ConnDep, incident_id: str, verdict: VerdictIn) -> IncidentPublic:
    """Record an analyst's verdict; the incident becomes resolved (see serving.incidents)."""
    try:
        return _public(incidents.record_verdict(conn, incident_id, verdict))
    except incidents.IncidentNotFound as exc:
        raise _not_found(exc) from exc


@router.post("/incidents/{incident_id}/status", response_model=IncidentPublic,
             responses={**_WRITE_ERRORS, 409: {"model": ErrorOut}})
def set_status(_: ApiKeyDep, conn: ConnDep, incident_id: str, body: StatusIn) -> IncidentPublic:
    """Move an incident along open -> acknowledged -> resolved; 409 on a backward move."""
    try:
        return _public(incidents.change_status(conn, incident_id, body.status))
    except incidents.IncidentNotFound as exc:
        raise _not_found(exc) from exc
    except incidents.InvalidTransition as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from exc
