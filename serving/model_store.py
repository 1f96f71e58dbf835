"""Which model serves, and how it is replaced without dropping a request.

The store holds ONE reference, ``current``, to an immutable :class:`LoadedModel`. A request reads it
once (the ``ModelDep`` dependency) and uses that object to the end, so a swap never changes the
model under a request in flight, and rebinding an attribute is atomic in CPython: there is no lock
on the scoring path.

``refresh()`` asks the registry which version the alias names; when it differs from the one serving,
it downloads the file, loads it and validates it on a canary batch (the feature names are exactly
``patternalarm.history_features.MODEL_FEATURE_NAMES``: a model trained before the history features,
or on another list, is refused with the difference named; probabilities are finite and in [0, 1], one per row), and
only then rebinds ``current``. A version that fails is refused: logged, counted, remembered (so the
poller does not re-download it every few seconds; ``force`` retries it), reported by
/predict/health, while the previous model keeps serving. Refreshes run one at a time (a lock), in
the poller thread or in a worker thread of POST /admin/reload, never on the event loop.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import cached_property
from pathlib import Path
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from patternalarm import features, history_features
from serving.forest_model import ForestModel
from serving.metrics import Metrics
from serving.registry import Registry, RegistryError, RegistryVersion, prune_downloads
from serving.schemas import ModelHealthOut, Refusal

log = logging.getLogger("serving.model_store")

Outcome = Literal["swapped", "unchanged", "refused", "no_model", "registry_error"]


@dataclass(frozen=True)
class LoadedModel:
    """A validated forest and where it came from; never mutated after construction."""

    forest: ForestModel
    name: str
    version: str
    run_id: str | None
    alias: str
    path: Path
    loaded_at: datetime
    load_seconds: float
    top_order: tuple[int, ...]  # feature indexes by decreasing importance

    @property
    def feature_names(self) -> list[str]:
        return self.forest.feature_names

    @cached_property
    def importance_list(self) -> list[float]:
        """Importances as Python floats, converted once rather than per prediction."""
        return [float(v) for v in self.forest.feature_importances]

    def predict_proba(self, X: NDArray[np.float64]) -> NDArray[np.float64]:
        return self.forest.predict_proba(X)


@dataclass(frozen=True)
class RefreshResult:
    outcome: Outcome
    version: str | None
    previous_version: str | None
    detail: str


class ModelRefused(ValueError):
    """A registered version that must not serve; the message says why and how to fix it."""


def _canary_transactions() -> list[list[features.Txn]]:
    """A few actors spanning the domains and extremes the features can take (fixed, offline)."""
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    burst = [features.Txn(amount=1.0 + i / 10, event_time=t0 + timedelta(seconds=5 * i), domain="ecommerce",
                          payment_method="card", session_sec=12.0, device=f"d{i % 2}") for i in range(8)]
    transfer = [features.Txn(amount=9_500.0, event_time=t0, domain="fintech", payment_method="WIRE",
                             country_from="US", country_to="GB", counterparty=f"acct-{i}")
                for i in range(3)]
    single = [features.Txn(amount=42.5, event_time=t0, domain="gaming", session_sec=None)]
    iot = [features.Txn(amount=-3.2 * i, event_time=t0 + timedelta(minutes=i), domain="iot", device="dev-1",
                        counterparty="temperature") for i in range(5)]
    huge = [features.Txn(amount=1e12, event_time=t0 + timedelta(days=i), domain="fintech") for i in range(2)]
    return [burst, transfer, single, iot, huge]


def canary_matrix() -> NDArray[np.float64]:
    """Canary rows: the window features, with an empty history and with a long, fraudulent one."""
    busy = {n: (5000.0 if "_count_" in n else 1.0) for n in history_features.HISTORY_FEATURE_NAMES}
    busy[history_features.COVERAGE] = float(history_features.COVERAGE_CAP_MIN)  # an old store
    rows = [history_features.model_row(features.compute(t), past)
            for t in _canary_transactions() for past in (None, busy)]
    return np.asarray(rows, dtype=np.float64)


def validate(forest: ForestModel) -> None:
    """Raise ModelRefused unless the forest can serve this service's features."""
    expected = list(history_features.MODEL_FEATURE_NAMES)
    if forest.feature_names != expected:
        missing = [n for n in expected if n not in forest.feature_names]
        extra = [n for n in forest.feature_names if n not in expected]
        raise ModelRefused(
            f"model has {len(forest.feature_names)} features, the service computes {len(expected)} "
            f"(patternalarm.history_features.MODEL_FEATURE_NAMES); missing: {missing or 'none'}, unknown: "
            f"{extra or 'none'}{', order differs' if not (missing or extra) else ''}: retrain on the "
            "current feature modules (`make train`, or `make retrain`)")
    if forest.num_classes != 2:
        raise ModelRefused(f"model has {forest.num_classes} classes; the service scores binary fraud models")
    X = canary_matrix()
    try:
        proba = np.asarray(forest.predict_proba(X))
    except Exception as exc:  # any failure on known-good input disqualifies the model
        raise ModelRefused(f"predict_proba failed on the canary batch: {exc}") from exc
    if proba.shape != (X.shape[0],):
        raise ModelRefused(f"predict_proba returned shape {proba.shape} for {X.shape[0]} canary rows")
    if not np.all(np.isfinite(proba)) or np.any(proba < 0.0) or np.any(proba > 1.0):
        raise ModelRefused(f"canary probabilities outside [0, 1] or not finite: {proba.tolist()}")


class ModelStore:
    def __init__(self, registry: Registry, model_dir: Path, metrics: Metrics,
                 loader: Callable[[Path], ForestModel] = ForestModel.load) -> None:
        self.registry = registry
        self.model_dir = model_dir
        self.metrics = metrics
        self._loader = loader
        self._lock = threading.Lock()
        self._refused: dict[tuple[str, str | None], Refusal] = {}
        self.current: LoadedModel | None = None
        self.last_poll_at: datetime | None = None
        self.last_poll_error: str | None = None
        self.last_refusal: Refusal | None = None
        self.swaps = 0
        self.refusals = 0

    def describe(self) -> ModelHealthOut:
        """State for GET /predict/health."""
        model = self.current
        base = dict(model_name=self.registry.name, registry_alias=self.registry.alias,
                    registry_uri=self.registry.tracking_uri, last_poll_at=self.last_poll_at,
                    last_poll_error=self.last_poll_error, last_refusal=self.last_refusal, swaps=self.swaps,
                    refusals=self.refusals)
        if model is None:
            return ModelHealthOut(loaded=False, detail=self.unavailable_reason(), **base)
        return ModelHealthOut(loaded=True, model_version=model.version, run_id=model.run_id,
                              classes=list(range(model.forest.num_classes)),
                              feature_names=list(model.feature_names), num_trees=model.forest.num_trees,
                              loaded_at=model.loaded_at, load_seconds=round(model.load_seconds, 4),
                              detail=f"serving {model.name} v{model.version} from {model.path}", **base)

    def unavailable_reason(self) -> str:
        """Why nothing serves yet, in words an operator can act on."""
        where = f"{self.registry.name!r}@{self.registry.alias} in {self.registry.tracking_uri}"
        if self.last_refusal is not None:
            return (f"no model loaded: the registry's {where} is v{self.last_refusal.version}, refused: "
                    f"{self.last_refusal.reason}")
        if self.last_poll_error is not None:
            return f"no model loaded: cannot read {where}: {self.last_poll_error}"
        if self.last_poll_at is None:
            return f"no model loaded yet: {where} has not been read"
        return (f"no model registered: no version of {where} carries the alias; train and register "
                "one (the retraining DAG does), then POST /admin/reload or wait for the poller")

    def refresh(self, force: bool = False) -> RefreshResult:
        """Serve the version the alias names, if it differs and passes validation (see module doc)."""
        with self._lock:
            return self._refresh(force)

    def _refresh(self, force: bool) -> RefreshResult:
        serving = self.current
        previous = serving.version if serving else None
        try:
            wanted = self.registry.champion()
        except RegistryError as exc:
            self.last_poll_at = datetime.now(timezone.utc)
            self.last_poll_error = str(exc)
            self.metrics.registry_errors.inc()
            log.warning("registry poll failed (still serving %s): %s", previous, exc)
            return RefreshResult("registry_error", previous, previous, str(exc))
        self.last_poll_at = datetime.now(timezone.utc)  # when the registry last answered (or failed)
        self.last_poll_error = None
        if wanted is None:
            detail = (f"no version of {self.registry.name!r} carries alias {self.registry.alias!r} in "
                      f"{self.registry.tracking_uri}: train and register one (the retraining DAG does)")
            if serving is None:
                return RefreshResult("no_model", None, None, detail)
            return RefreshResult("unchanged", previous, previous, detail + f"; still serving v{previous}")
        if serving is not None and (serving.version, serving.run_id) == wanted.key:
            return RefreshResult("unchanged", previous, previous, f"v{previous} is {wanted.alias}")
        known = self._refused.get(wanted.key)
        if known is not None and not force:
            return RefreshResult("refused", previous, previous,
                                 f"v{wanted.version} was refused: {known.reason}")
        try:
            candidate = self._load(wanted)
        except RegistryError as exc:  # an outage while downloading: not the version's fault, retry
            self.last_poll_error = str(exc)
            self.metrics.registry_errors.inc()
            log.warning("could not fetch v%s (still serving %s): %s", wanted.version, previous, exc)
            return RefreshResult("registry_error", previous, previous, str(exc))
        except Exception as exc:  # whatever a bad file raises, the answer is the same: refuse it
            return self._refuse(wanted, f"{type(exc).__name__}: {exc}", previous)
        self.current = candidate  # the swap: one reference, requests already running keep theirs
        self.swaps += 1
        self.metrics.swaps.labels("swapped").inc()
        self.metrics.served(candidate.name, candidate.version, candidate.run_id)
        self._refused.pop(wanted.key, None)
        keep = [candidate.path.parent] + ([serving.path.parent] if serving else [])
        prune_downloads(self.model_dir, self.registry.name, keep)
        log.info("now serving %s v%s (run %s), was %s; loaded in %.3f s", candidate.name, candidate.version,
                 candidate.run_id, previous, candidate.load_seconds)
        return RefreshResult("swapped", candidate.version, previous,
                             f"serving v{candidate.version} (was {previous or 'nothing'})")

    def _load(self, wanted: RegistryVersion) -> LoadedModel:
        started = time.perf_counter()
        path = self.registry.download(wanted, self.model_dir)
        forest = self._loader(path)
        validate(forest)
        order = tuple(int(i) for i in np.argsort(-np.asarray(forest.feature_importances), kind="stable"))
        return LoadedModel(forest=forest, name=wanted.name, version=wanted.version, run_id=wanted.run_id,
                           alias=wanted.alias, path=path, loaded_at=datetime.now(timezone.utc),
                           load_seconds=time.perf_counter() - started, top_order=order)

    def _refuse(self, wanted: RegistryVersion, reason: str, previous: str | None) -> RefreshResult:
        refusal = Refusal(version=wanted.version, run_id=wanted.run_id, reason=reason,
                          at=datetime.now(timezone.utc))
        self._refused[wanted.key] = refusal
        self.last_refusal = refusal
        self.refusals += 1
        self.metrics.swaps.labels("refused").inc()
        log.error("refused %s v%s (run %s): %s; still serving %s", wanted.name, wanted.version,
                  wanted.run_id, reason, previous or "nothing")
        return RefreshResult("refused", previous, previous, f"v{wanted.version} refused: {reason}")


@dataclass
class Poller:
    """Reads the alias at once, then every ``interval_s``, in a daemon thread until stopped.

    ``first_done`` is set after the first attempt, so startup can wait for it with a bound: a
    registry that hangs delays the service's first request by at most that bound, not forever.
    """

    store: ModelStore
    interval_s: float
    first_done: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _last_outcome: str | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="model-poller", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        self._refresh()
        self.first_done.set()
        while not self._stop.wait(self.interval_s):
            self._refresh()

    def _refresh(self) -> None:
        try:
            result = self.store.refresh()
        except Exception:  # the poller must outlive any surprise; the next poll retries
            log.exception("model refresh failed unexpectedly")
            return
        if result.outcome == "no_model" and self._last_outcome != "no_model":  # say it once, not every poll
            log.warning("%s", result.detail)
        self._last_outcome = result.outcome
