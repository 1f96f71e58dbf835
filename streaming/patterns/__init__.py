"""Detection patterns: one SQL file per pattern, thresholds from configuration.

Each file is a SELECT producing the alert columns (alert_id, pattern, domain, actor_id, severity,
first_event_time, event_time, transaction_ids, measures) from the ``events`` view. Thresholds are
``{{name}}`` placeholders filled from THRESHOLDS, which environment variables
``PA_RULE_<PATTERN>_<NAME>`` override (docs/patterns.md lists them).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

PATTERN_DIR = Path(__file__).parent

THRESHOLDS: dict[str, dict[str, float | int]] = {
    "card_testing": {"min_purchases": 5, "max_amount": 5.0, "max_session_sec": 60, "within_minutes": 10},
}

_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")


def thresholds(pattern: str) -> dict[str, float | int]:
    """Defaults overridden by PA_RULE_<PATTERN>_<NAME> environment variables."""
    values = dict(THRESHOLDS[pattern])
    for name, default in values.items():
        raw = os.environ.get(f"PA_RULE_{pattern.upper()}_{name.upper()}")
        if raw:
            values[name] = type(default)(raw)
    return values


def render(pattern: str) -> str:
    """The pattern's SQL with thresholds filled in; an unknown placeholder is an error, not a blank."""
    values = thresholds(pattern)
    text = (PATTERN_DIR / f"{pattern}.sql").read_text()

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise KeyError(f"{pattern}.sql uses {{{{{name}}}}} but THRESHOLDS['{pattern}'] has no '{name}'")
        return str(values[name])

    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
    return _PLACEHOLDER.sub(fill, body)


def enabled() -> list[str]:
    return list(THRESHOLDS)
