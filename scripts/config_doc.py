#!/usr/bin/env python3
"""Write docs/configuration.md from patternalarm/config.py, so the table cannot drift from the code."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import ast  # noqa: E402

from patternalarm.config import REPO_ROOT, describe  # noqa: E402

SERVICE_SETTINGS = {"scoring service": REPO_ROOT / "serving" / "settings.py"}

HEADER = """# Configuration

Every setting is an environment variable with a local default; `patternalarm/config.py` defines them
and this page is generated from it (`python3 scripts/config_doc.py`; a test fails when they differ).
Pattern thresholds are `PA_RULE_<PATTERN>_<NAME>` (see docs/patterns.md). Airflow's own settings are
passed as `AIRFLOW__*` variables by `patternalarm/stack/services.py`.

| variable | default | meaning |
| --- | --- | --- |
"""


def service_settings(path: Path) -> list[tuple[str, str, str]]:
    """Rows of a service's own pydantic settings, read from its source with `ast` (this script runs
    before any venv exists): each ``Field(default, description="PA_X: meaning")``."""
    rows = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.value, ast.Call)):
            continue
        call = node.value
        description = next((k.value for k in call.keywords if k.arg == "description"), None)
        if not (isinstance(description, ast.Constant) and str(description.value).startswith("PA_")):
            continue
        env, _, doc = str(description.value).partition(": ")
        default = ast.unparse(call.args[0]) if call.args else ""
        rows.append((env, default.strip("'\""), doc))
    return rows


def _table(rows: list[tuple[str, str, str]]) -> str:
    return "\n".join(f"| `{env}` | `{default}` | {doc} |" for env, default, doc in rows)


def render() -> str:
    text = HEADER + _table(describe()) + "\n"
    for service, path in SERVICE_SETTINGS.items():
        text += (f"\n## Settings of the {service} only\n\nDeclared in `{path.relative_to(REPO_ROOT)}`.\n\n"
                 "| variable | default | meaning |\n| --- | --- | --- |\n" + _table(service_settings(path)) + "\n")
    return text


if __name__ == "__main__":
    target = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"
    target.write_text(render())
    print(f"wrote {target}")
