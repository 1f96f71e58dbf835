"""Prometheus gauges of the detection pipeline, read from PostgreSQL when /metrics is scraped.

Why here: the alerts table is where the pipeline's three timestamps meet (the triggering event's
time, when the job emitted the alert, when the row was stored and grouped into an incident), and the
scoring service already exposes /metrics and holds a connection pool. One indexed query per scrape
over the last ``WINDOW`` of stored alerts; a database that does not answer makes the gauges
disappear from that scrape (the HTTP metrics still come), never a failed scrape.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

log = logging.getLogger("serving.pipeline_metrics")

WINDOW = "5 minutes"
QUANTILES = (0.5, 0.99)

LATENCY_SQL = text(f"""
SELECT percentile_cont(0.5)  WITHIN GROUP (ORDER BY extract(epoch FROM emitted_at - event_time)),
       percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM emitted_at - event_time)),
       percentile_cont(0.5)  WITHIN GROUP (ORDER BY extract(epoch FROM stored_at - event_time)),
       percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM stored_at - event_time))
  FROM alerts WHERE stored_at > clock_timestamp() - interval '{WINDOW}' AND pattern <> 'suspicious_activity'""")

# The scoring path, apart: the window scorer stores a window's score after the alert (suspicious_activity
# alerts are made from it, so they share this latency and are left out of the alert quantiles above).
SCORING_SQL = text(f"""
SELECT percentile_cont(0.5)  WITHIN GROUP (ORDER BY extract(epoch FROM scored_at - window_end)),
       percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM scored_at - window_end))
  FROM actor_windows WHERE window_end > clock_timestamp() - interval '{WINDOW}' AND scored_at IS NOT NULL""")

ALERTS_SQL = text(f"""
SELECT pattern, score_status, count(*) FROM alerts
 WHERE stored_at > clock_timestamp() - interval '{WINDOW}' GROUP BY 1, 2""")

OPEN_INCIDENTS_SQL = text("SELECT severity, status, count(*) FROM incidents WHERE status <> 'resolved' "
                          "GROUP BY 1, 2")


class PipelineCollector(Collector):
    """Event->alert latency quantiles (rule alerts), window->score latency quantiles, recent alerts by
    pattern and score status, open incidents."""

    def __init__(self, engine_of: Callable[[], Engine | None]) -> None:
        """``engine_of`` returns the app's engine once its lifespan made it, None before."""
        self.engine_of = engine_of

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(())  # values come from the database at scrape time only

    def collect(self) -> Iterator[GaugeMetricFamily]:
        engine = self.engine_of()
        if engine is None:
            return
        try:
            with engine.connect() as conn:
                latency = conn.execute(LATENCY_SQL).one()
                scoring = conn.execute(SCORING_SQL).one()
                alerts = conn.execute(ALERTS_SQL).all()
                incidents = conn.execute(OPEN_INCIDENTS_SQL).all()
        except SQLAlchemyError as exc:
            log.warning("pipeline metrics skipped: %s", str(exc).splitlines()[0])
            return
        lat = GaugeMetricFamily("pa_alert_latency_seconds",
                                f"Seconds from the triggering event to the rule alert, alerts stored in the last "
                                f"{WINDOW}; stage emitted = the job emitted it, stored = stored and grouped "
                                "into an incident", labels=["stage", "quantile"])
        for i, (stage, q) in enumerate((s, q) for s in ("emitted", "stored") for q in QUANTILES):
            if latency[i] is not None:
                lat.add_metric([stage, str(q)], float(latency[i]))
        yield lat
        score_lat = GaugeMetricFamily("pa_window_score_latency_seconds",
                                      f"Seconds from a window's end to its stored score (the window scorer; "
                                      f"suspicious_activity alerts follow it), windows ended in the last {WINDOW}",
                                      labels=["quantile"])
        for q, value in zip(QUANTILES, scoring):
            if value is not None:
                score_lat.add_metric([str(q)], float(value))
        yield score_lat
        recent = GaugeMetricFamily("pa_alerts_recent", f"Alerts stored in the last {WINDOW}",
                                   labels=["pattern", "score_status"])
        for pattern, status, n in alerts:
            recent.add_metric([pattern, status], n)
        yield recent
        open_ = GaugeMetricFamily("pa_incidents_unresolved", "Incidents not resolved yet",
                                  labels=["severity", "status"])
        for severity, status, n in incidents:
            open_.add_metric([severity, status], n)
        yield open_

