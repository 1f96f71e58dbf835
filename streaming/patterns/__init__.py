"""Detection patterns in SQL: one file per pattern, everything about it in that file.

Each ``<pattern>.sql`` is a SELECT over its domain's events, the ``events_<domain>`` view (valid
events of that domain only, filtered once before the statements: streaming/event_stream.py
``domain_table`` says why; or, for the gaming look-backs, the ``gaming_history`` view of
streaming/player_history.py) producing the alert columns (alert_id,
`pattern`, domain, actor_id, severity, first_event_time, event_time, transaction_ids, `measures`).
It starts with comments: what it detects in English, why CEP or windows suit it, and its thresholds
as ``-- @threshold name = default`` lines. The body uses them as ``{{name}}``; environment variables
``PA_RULE_<PATTERN>_<NAME>`` override a default (docs/patterns.md lists them all). A default is a
number or a comma-separated list of codes (``KY,PA,BZ,VG``), which the body gets as SQL string
literals for an ``IN (...)``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

PATTERN_DIR = Path(__file__).parent
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
_THRESHOLD = re.compile(r"^--\s*@threshold\s+(\w+)\s*=\s*(\S+)\s*$")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_CODE = re.compile(r"[A-Za-z0-9_]+")  # list items go into SQL literals: no quotes, no spaces

Threshold = float | int | tuple[str, ...]


def enabled() -> list[str]:
    """Every pattern with a SQL file, in name order (PA_PATTERNS=a,b restricts them; it may also name
    the IoT detectors, which streaming/iot_detectors.py runs)."""
    from streaming.iot_detectors import DETECTORS

    names = sorted(p.stem for p in PATTERN_DIR.glob("*.sql"))
    chosen = os.environ.get("PA_PATTERNS")
    if chosen:
        wanted = [n.strip() for n in chosen.split(",") if n.strip()]
        unknown = sorted(set(wanted) - set(names) - set(DETECTORS))
        if unknown:
            raise ValueError(f"PA_PATTERNS names unknown patterns {unknown}; known: "
                             f"{', '.join(sorted([*names, *DETECTORS]))}")
        return [n for n in names if n in wanted]
    return names


def _number(text: str) -> float | int:
    return float(text) if any(c in text for c in ".eE") else int(text)


def _codes(text: str) -> tuple[str, ...]:
    codes = tuple(c.strip() for c in text.split(","))
    if not all(_CODE.fullmatch(c) for c in codes):
        raise ValueError(f"{text!r} is not a comma-separated list of codes like KY,PA,BZ,VG")
    return codes


def _value(text: str) -> Threshold:
    return _number(text) if _NUMBER.fullmatch(text) else _codes(text)


def defaults(pattern: str) -> dict[str, Threshold]:
    """The ``@threshold`` lines of a pattern's file."""
    found: dict[str, Threshold] = {}
    for line in (PATTERN_DIR / f"{pattern}.sql").read_text().splitlines():
        match = _THRESHOLD.match(line.strip())
        if match:
            found[match.group(1)] = _value(match.group(2))
    return found


def thresholds(pattern: str) -> dict[str, Threshold]:
    """Defaults overridden by PA_RULE_<PATTERN>_<NAME> environment variables."""
    values = defaults(pattern)
    for name, default in values.items():
        raw = os.environ.get(f"PA_RULE_{pattern.upper()}_{name.upper()}")
        if raw:
            kind = "list of codes" if isinstance(default, tuple) else type(default).__name__
            try:
                values[name] = _codes(raw) if isinstance(default, tuple) else type(default)(raw)
            except ValueError:
                raise ValueError(f"PA_RULE_{pattern.upper()}_{name.upper()}={raw!r} is not a {kind}") from None
    return values


def _sql(value: Threshold) -> str:
    return ", ".join(f"'{c}'" for c in value) if isinstance(value, tuple) else str(value)


def render(pattern: str) -> str:
    """The pattern's SQL with thresholds filled in; an unknown placeholder is an error, not a blank."""
    values = thresholds(pattern)
    text = (PATTERN_DIR / f"{pattern}.sql").read_text()

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise KeyError(f"{pattern}.sql uses {{{{{name}}}}} but declares no '-- @threshold {name} = ...'")
        return _sql(values[name])

    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
    return _PLACEHOLDER.sub(fill, body)


def domains_read(names: list[str] | None = None) -> list[str]:
    """The domains whose ``events_<domain>`` view the patterns (default: the enabled ones) read: the
    job builds only those (a filtered stream nobody reads would still run)."""
    from patternalarm.events import DOMAINS

    table = re.compile(r"\bevents_(" + "|".join(DOMAINS) + r")\b")
    found = {m.group(1) for p in (enabled() if names is None else names) for m in table.finditer(render(p))}
    return [d for d in DOMAINS if d in found]


# Look-backs that live in keyed OVER state, which the state TTL (PA_STATE_TTL_DAYS) clears after that
# many days of a key's silence: pattern -> (threshold, days per unit of it).
STATE_HORIZONS = {"friendly_fraud": ("quiet_days", 1.0), "promo_abuse": ("within_hours", 1 / 24)}


def check_state_ttl(ttl_days: int) -> None:
    """Refuse a TTL shorter than a look-back: the job would forget a purchase the rule must still
    see, and call an active actor quiet (friendly_fraud) or a repeat order new (promo_abuse)."""
    if ttl_days <= 0:  # 0: state kept forever
        return
    for pattern in enabled():
        if pattern not in STATE_HORIZONS:
            continue
        name, days_per_unit = STATE_HORIZONS[pattern]
        horizon = float(thresholds(pattern)[name]) * days_per_unit  # type: ignore[arg-type]
        if horizon > ttl_days:
            raise ValueError(f"PA_STATE_TTL_DAYS={ttl_days} is shorter than {pattern}'s look-back "
                             f"({name} = {thresholds(pattern)[name]}, {horizon:g} days): raise "
                             f"PA_STATE_TTL_DAYS to at least {horizon:g} or lower "
                             f"PA_RULE_{pattern.upper()}_{name.upper()}")
