"""Model metrics on scored windows: ranking, the alert budget, top-k per day, per pattern.

Pure numpy (scikit-learn for ROC AUC and average precision), no Spark, no MLflow: the training job,
the retrain DAG's run and the backtest all compute their numbers here from the same arrays.

Definitions (docs/ml-lifecycle.md shows them with an example):

* **ROC AUC, average precision** over windows (label 1: the window holds a fraudulent transaction).
  Undefined (NaN) when the windows hold one class only.
* **Alert budget**: what the analysts can review. ``"1%"`` / ``"0.01"`` flags the top share of all
  windows by score; ``"50/day"`` flags the top 50 windows of each UTC day. Precision and recall at
  the budget are those of the flagged windows.
* **precision@k, recall@k per day**: the k windows of a day with the highest scores; precision is
  the share of them labelled fraud, recall the share of the day's fraud windows among them. Overall
  precision@k is the mean over days (as in the Fraud Detection Handbook), overall recall@k is the
  frauds caught over all days divided by all fraud windows.
* **card precision@k per day** (Fraud Detection Handbook, "card precision top-k"): per day, an actor
  (card) scores the maximum of its windows' scores and is fraudulent when any of its windows that
  day is; the share of fraudulent actors among the k highest-scoring actors. (The handbook also
  drops cards already known compromised on earlier days; we do not.)
* **recall per pattern** at the budget: among fraud windows whose ground-truth pattern is known,
  the share flagged, per pattern.

Ties at the cut are broken by position (a stable sort on the descending score), so a
constant-score model gets the precision of its row order, not of a lucky tie-break.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np


@dataclass(frozen=True)
class AlertBudget:
    """How many windows the analysts review: a share of all windows, or a number per UTC day."""

    share: float | None = None
    per_day: int | None = None

    @classmethod
    def parse(cls, text: str) -> "AlertBudget":
        """``"1%"``, ``"0.01"`` (share of windows) or ``"50/day"`` (windows per day)."""
        raw = str(text).strip().lower().replace(" ", "")
        try:
            if raw.endswith("/day"):
                per_day = int(raw[: -len("/day")])
                if per_day < 1:
                    raise ValueError
                return cls(per_day=per_day)
            share = float(raw[:-1]) / 100.0 if raw.endswith("%") else float(raw)
        except ValueError:
            share = -1.0
        if not 0.0 < share <= 1.0:
            raise ValueError(f"alert budget {text!r}: write a share of windows ('1%' or '0.01') or a number "
                             "of alerts per day ('50/day')")
        return cls(share=share)

    def __str__(self) -> str:
        return f"{self.per_day}/day" if self.per_day is not None else f"{100.0 * (self.share or 0.0):g}%"


def _order(scores: np.ndarray) -> np.ndarray:
    """Indices by descending score, ties in row order."""
    return np.argsort(-scores, kind="stable")


def ranking(labels: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """ROC AUC and average precision; NaN when only one class is present."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    positives = int(labels.sum())
    if positives == 0 or positives == labels.size:
        return {"roc_auc": math.nan, "average_precision": math.nan}
    return {"roc_auc": float(roc_auc_score(labels, scores)),
            "average_precision": float(average_precision_score(labels, scores))}


def flagged_by_budget(scores: np.ndarray, days: np.ndarray, budget: AlertBudget) -> np.ndarray:
    """Boolean mask of the windows the budget lets analysts see."""
    flagged = np.zeros(scores.size, dtype=bool)
    if budget.per_day is not None:
        for day in np.unique(days):
            idx = np.flatnonzero(days == day)
            flagged[idx[_order(scores[idx])[: budget.per_day]]] = True
        return flagged
    assert budget.share is not None
    count = max(1, math.ceil(budget.share * scores.size)) if scores.size else 0
    flagged[_order(scores)[:count]] = True
    return flagged


def at_budget(labels: np.ndarray, scores: np.ndarray, days: np.ndarray, budget: AlertBudget,
              patterns: Sequence[Any] | None = None) -> dict[str, float]:
    """Precision and recall of the budget's alerts, and recall per ground-truth pattern."""
    flagged = flagged_by_budget(scores, days, budget)
    positives = labels == 1.0
    tp = int(np.sum(flagged & positives))
    out = {"alerts_at_budget": float(flagged.sum()),
           "precision_at_budget": tp / int(flagged.sum()) if flagged.any() else math.nan,
           "recall_at_budget": tp / int(positives.sum()) if positives.any() else math.nan}
    if patterns is not None:
        names = np.asarray([p if p else "" for p in patterns], dtype=object)
        for pattern in sorted({p for p in names[positives] if p}):
            mine = positives & (names == pattern)
            out[f"recall_at_budget.{pattern}"] = float(np.sum(flagged & mine)) / int(mine.sum())
            out[f"positives.{pattern}"] = float(mine.sum())
    return out


def top_k(labels: np.ndarray, scores: np.ndarray, k: int) -> tuple[float, float, int]:
    """(precision@k, recall@k, frauds among the top k) of one day's windows."""
    top = _order(scores)[:k]
    caught = int(labels[top].sum())
    positives = int(labels.sum())
    return caught / k, (caught / positives if positives else math.nan), caught


def card_precision_at_k(actors: np.ndarray, labels: np.ndarray, scores: np.ndarray, k: int) -> float:
    """One day: share of fraudulent actors among the k actors with the highest max score."""
    best: dict[Any, float] = {}
    fraud: dict[Any, bool] = {}
    for actor, label, score in zip(actors.tolist(), labels.tolist(), scores.tolist()):
        best[actor] = max(best.get(actor, -math.inf), score)
        fraud[actor] = fraud.get(actor, False) or label == 1.0
    names = list(best)
    order = _order(np.asarray([best[a] for a in names], dtype=np.float64))[:k]
    return sum(fraud[names[i]] for i in order) / k


def per_day(days: np.ndarray, actors: np.ndarray, labels: np.ndarray, scores: np.ndarray,
            k: int) -> list[dict[str, Any]]:
    """One row per UTC day: windows, fraud windows, ROC AUC, AP, precision/recall@k, card precision@k."""
    if k < 1:
        raise ValueError(f"k={k}: the number of top windows/actors per day must be at least 1")
    rows = []
    for day in sorted(np.unique(days).tolist()):
        idx = np.flatnonzero(days == day)
        y, s = labels[idx], scores[idx]
        precision, recall, _ = top_k(y, s, k)
        rows.append({"day": str(day), "windows": int(idx.size), "fraud_windows": int(y.sum()),
                     **ranking(y, s), "precision_at_k": precision, "recall_at_k": recall,
                     "card_precision_at_k": card_precision_at_k(actors[idx], y, s, k)})
    return rows


def overall(days: np.ndarray, actors: np.ndarray, labels: np.ndarray, scores: np.ndarray, k: int,
            daily: list[dict[str, Any]]) -> dict[str, float]:
    """The whole period: ranking over all windows, top-k numbers summarised over the days."""
    caught = sum(top_k(labels[days == d["day"]], scores[days == d["day"]], k)[2] for d in daily)
    positives = int(labels.sum())
    return {"windows": float(labels.size), "fraud_windows": float(positives), "days": float(len(daily)),
            **ranking(labels, scores),
            "precision_at_k": float(np.mean([d["precision_at_k"] for d in daily])) if daily else math.nan,
            "recall_at_k": caught / positives if positives else math.nan,
            "card_precision_at_k": float(np.mean([d["card_precision_at_k"] for d in daily])) if daily else math.nan}


def table(daily: list[dict[str, Any]], total: dict[str, float], k: int) -> str:
    """The per-day rows and the overall line as a fixed-width text table."""
    head = ["day", "windows", "fraud", "roc_auc", "avg_prec", f"prec@{k}", f"recall@{k}", f"card_prec@{k}"]
    keys = ["windows", "fraud_windows", "roc_auc", "average_precision", "precision_at_k", "recall_at_k",
            "card_precision_at_k"]

    def cell(key: str, value: Any) -> str:
        if isinstance(value, float) and math.isnan(value):
            return "-"
        return str(int(value)) if key in ("windows", "fraud_windows") else f"{value:.4f}"

    lines = [[d["day"], *(cell(key, d[key]) for key in keys)] for d in daily]
    lines.append(["overall", *(cell(key, total[key]) for key in keys)])
    widths = [max(len(r[i]) for r in [head, *lines]) for i in range(len(head))]
    fmt = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
    return "\n".join(fmt.format(*r) for r in [head, *lines])
