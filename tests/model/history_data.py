"""A constructed labelled history in a user's own column names (not the defaults).

Three UTC days, ten minutes each (12:00-12:09). Every minute each of 30 legitimate customers pays
once (20-200) at one of 40 terminals. Each day 4 card testers (their own customer ids) probe twice,
in minutes 2 and 7: 6 payments of 1-4 to 6 terminals within 40 s, labelled fraud with scenario
"card_testing"; in the other minutes they pay once, like everyone else, labelled legit. Fraud and
legit windows are separable by several features, so a forest ranks them perfectly: ROC AUC 1.0,
and the 4 top actors of each day are the 4 card testers (card precision@4 = 1.0).
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

START = datetime(2026, 2, 1, 12, 0, tzinfo=timezone.utc)
DAYS, MINUTES, LEGIT, TESTERS = 3, 10, 30, 4
FRAUD_MINUTES = (2, 7)
COLUMNS = ["tx_id", "customer", "terminal", "tx_amount", "tx_time", "is_fraud", "scenario", "channel"]
MAPPING = {"actor": "customer", "counterparty": "terminal", "amount": "tx_amount", "timestamp": "tx_time",
           "label": "is_fraud", "transaction_id": "tx_id", "pattern": "scenario", "domain": "channel",
           "timestamp_format": "dd/MM/yyyy HH:mm:ss"}
TIME_FORMAT = "%d/%m/%Y %H:%M:%S"  # MAPPING's timestamp_format in strftime terms


def rows(seed: int = 3) -> list[dict[str, Any]]:
    """Transactions in time order; ``tx_time`` is a datetime (written per format by the writers)."""
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []

    def pay(customer: str, when: datetime, amount: float, fraud: bool) -> None:
        out.append({"tx_id": f"t{len(out)}", "customer": customer, "terminal": f"term-{rng.randrange(40)}",
                    "tx_amount": round(amount, 2), "tx_time": when, "is_fraud": int(fraud),
                    "scenario": "card_testing" if fraud else "", "channel": "ecommerce"})

    for day in range(DAYS):
        for minute in range(MINUTES):
            base = START + timedelta(days=day, minutes=minute)
            for c in range(LEGIT):
                pay(f"cust-{c}", base + timedelta(seconds=rng.randrange(60)), rng.uniform(20, 200), False)
            for t in range(TESTERS):
                tester = f"tester-d{day}-{t}"
                if minute in FRAUD_MINUTES:
                    for j in range(6):
                        pay(tester, base + timedelta(seconds=5 + 6 * j), rng.uniform(1, 4), True)
                else:
                    pay(tester, base + timedelta(seconds=rng.randrange(60)), rng.uniform(20, 200), False)
    out.sort(key=lambda r: (r["tx_time"], r["tx_id"]))
    return out


def write_csv(path: Path, items: list[dict[str, Any]]) -> Path:
    import csv

    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        for r in items:
            writer.writerow({**r, "tx_time": r["tx_time"].strftime(TIME_FORMAT)})
    return path


def write_parquet(path: Path, items: list[dict[str, Any]]) -> Path:
    """Parquet with a real timestamp column (UTC) and integer labels: no timestamp_format needed."""
    import pandas as pd

    pd.DataFrame(items, columns=COLUMNS).to_parquet(path, index=False)
    return path


def parquet_mapping() -> dict[str, str]:
    return {k: v for k, v in MAPPING.items() if k != "timestamp_format"}
