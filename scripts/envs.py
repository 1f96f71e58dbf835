#!/usr/bin/env python3
"""One virtualenv per component, cached outside the repo and keyed by a hash of its pins.

constraints.txt holds one section per component (``# [component]`` up to the next section). A
section is the complete, working resolution of that component (``pip freeze`` of a venv built from
the component's top-level requirements). The venv for a section lives at
``$PATTERNALARM_CACHE/venvs/<component>-<hash>``; the hash covers the section text and the Python
version, so a changed pin rebuilds only that component and a fresh clone (CI) reuses the rest.

Usage:
    envs.py ensure COMPONENT...   build what is missing, print nothing but errors
    envs.py path COMPONENT        print the venv directory
    envs.py python COMPONENT      print the venv's python
    envs.py section COMPONENT     print the pins of a component
    envs.py lock COMPONENT REQ... resolve REQ... in a scratch venv and print a new section

Standard library only: it runs before any venv exists.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CONSTRAINTS = REPO / "constraints.txt"
SECTION_PREFIX = "# ["


def cache_dir() -> Path:
    return Path(os.path.expanduser(os.environ.get("PATTERNALARM_CACHE") or "~/.cache/patternalarm"))


def sections() -> dict[str, list[str]]:
    """Parse constraints.txt into {component: [requirement lines]}."""
    result: dict[str, list[str]] = {}
    current: str | None = None
    for raw in CONSTRAINTS.read_text().splitlines():
        line = raw.strip()
        if line.startswith(SECTION_PREFIX) and line.endswith("]"):
            current = line[len(SECTION_PREFIX):-1].strip()
            result[current] = []
        elif current and line and not line.startswith("#"):
            result[current].append(line)
    return result


def section(component: str) -> list[str]:
    found = sections()
    if component not in found:
        raise SystemExit(f"envs: no section '# [{component}]' in {CONSTRAINTS}; known: {', '.join(found)}")
    return found[component]


def venv_dir(component: str) -> Path:
    pins = "\n".join(section(component))
    digest = hashlib.sha256(f"{sys.version_info[:2]}\n{pins}".encode()).hexdigest()[:12]
    return cache_dir() / "venvs" / f"{component}-{digest}"


def _run(cmd: list[str], log: Path) -> None:
    with log.open("a") as out:
        out.write(f"\n$ {' '.join(cmd)}\n")
        out.flush()
        proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        tail = "".join(log.read_text().splitlines(keepends=True)[-30:])
        raise SystemExit(f"envs: command failed ({proc.returncode}): {' '.join(cmd)}\n{tail}\nfull log: {log}")


def ensure(component: str) -> Path:
    """Build the component's venv unless a complete one exists; a marker file proves completeness."""
    target = venv_dir(component)
    marker = target / ".complete"
    if marker.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # An interrupted build leaves no marker: start that venv again from scratch.
    shutil.rmtree(target, ignore_errors=True)
    log = cache_dir() / "logs" / f"{target.name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    print(f"envs: building {component} venv (log: {log})", file=sys.stderr)
    _run([sys.executable, "-m", "venv", str(target)], log)
    py = str(target / "bin" / "python")
    _run([py, "-m", "pip", "install", "--quiet", "--upgrade", "pip==24.0", "setuptools==69.5.1", "wheel==0.43.0"], log)
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as req:
        req.write("\n".join(section(component)) + "\n")
    try:
        _run([py, "-m", "pip", "install", "--quiet", "--no-deps", "-r", req.name], log)
        _run([py, "-m", "pip", "check"], log)
    finally:
        os.unlink(req.name)
    marker.write_text("ok\n")
    return target


def lock(component: str, requirements: list[str]) -> str:
    """Resolve top-level requirements in a scratch venv; return a section to paste into constraints.txt."""
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "lock.log"
        subprocess.run([sys.executable, "-m", "venv", f"{tmp}/v"], check=True)
        py = f"{tmp}/v/bin/python"
        _run([py, "-m", "pip", "install", "--quiet", "--upgrade", "pip==24.0", "setuptools==69.5.1", "wheel==0.43.0"], log)
        _run([py, "-m", "pip", "install", "--quiet", *requirements], log)
        _run([py, "-m", "pip", "check"], log)
        frozen = subprocess.run([py, "-m", "pip", "freeze", "--all"], check=True, capture_output=True, text=True).stdout
    pins = [ln for ln in frozen.splitlines() if ln and not ln.startswith(("pip==", "setuptools==", "wheel=="))]
    return f"{SECTION_PREFIX}{component}]\n" + "\n".join(sorted(pins, key=str.lower)) + "\n"


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    verb, args = argv[0], argv[1:]
    if verb == "ensure":
        for component in args:
            ensure(component)
    elif verb == "path":
        print(venv_dir(args[0]))
    elif verb == "python":
        print(venv_dir(args[0]) / "bin" / "python")
    elif verb == "section":
        print("\n".join(section(args[0])))
    elif verb == "lock":
        print(lock(args[0], args[1:]), end="")
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
