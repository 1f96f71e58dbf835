#!/usr/bin/env python3
"""Write docs/configuration.md from patternalarm/config.py, so the table cannot drift from the code."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from patternalarm.config import describe  # noqa: E402

HEADER = """# Configuration

Every setting is an environment variable with a local default; `patternalarm/config.py` defines them
and this page is generated from it (`python3 scripts/config_doc.py`; a test fails when they differ).
Pattern thresholds are `PA_RULE_<PATTERN>_<NAME>` (see docs/patterns.md). Airflow's own settings are
passed as `AIRFLOW__*` variables by `patternalarm/stack/services.py`.

| variable | default | meaning |
| --- | --- | --- |
"""


def render() -> str:
    rows = [f"| `{env}` | `{default}` | {doc} |" for env, default, doc in describe()]
    return HEADER + "\n".join(rows) + "\n"


if __name__ == "__main__":
    target = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"
    target.write_text(render())
    print(f"wrote {target}")
