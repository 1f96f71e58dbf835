"""`python3 -m patternalarm.stack COMMAND`: the stack commands behind the Makefile.

    setup            build venvs and fetch jars (idempotent; seconds when nothing changed)
    up [SERVICE...]  start services (all by default) and wait until healthy
    down [SERVICE...] stop them (reverse order); PostgreSQL stays up unless PA_STOP_POSTGRES=1
    status           one line per service: healthy or why not, and where its log is
    demo             up, then the generator in NORMAL mode with a live read-out (until Ctrl-C, or DURATION=60s)
    urls             where the UIs are

Standard library only: it runs before any virtualenv exists.
"""

from __future__ import annotations

import subprocess
import sys

from patternalarm import config
from patternalarm.config import REPO_ROOT
from patternalarm.stack import processes, services
from patternalarm.stack.processes import ServiceError


def setup() -> None:
    for component in ("serving", "streaming", "airflow"):
        subprocess.run([sys.executable, str(services.ENVS_SCRIPT), "ensure", component], check=True)
    subprocess.run(["bash", str(REPO_ROOT / "scripts" / "jars.sh")], check=True, stdout=subprocess.DEVNULL)


def up(names: list[str]) -> int:
    settings = config.load()
    for service in services.by_name(names):
        ok, detail = _safe_status(service, settings)
        if ok and not service.always_start:
            print(f"  {service.name:<14} already up  {detail}", flush=True)
            continue
        print(f"  starting {service.name} ...", flush=True)
        try:
            service.start(settings)
        except (ServiceError, RuntimeError, subprocess.CalledProcessError) as exc:
            print(f"  {service.name}: FAILED\n{exc}\nlog: {processes.log_path(settings, service.name)}",
                  file=sys.stderr)
            return 1
        ok, detail = service.status(settings)
        print(f"  {service.name:<14} {'up' if ok else 'DEGRADED'}  {detail}", flush=True)
    return 0


def down(names: list[str]) -> int:
    settings = config.load()
    for service in reversed(services.by_name(names)):
        instead = service.stop(settings)
        print(f"  {service.name}: {instead}" if instead else f"  stopped {service.name}")
    return 0


def _safe_status(service: services.Service, settings: config.Settings) -> tuple[bool, str]:
    try:
        return service.status(settings)
    except Exception as exc:  # a status probe must never crash the report
        return False, f"status check failed: {exc}"


def status() -> int:
    settings = config.load()
    all_ok = True
    for service in services.SERVICES:
        ok, detail = _safe_status(service, settings)
        all_ok &= ok
        where = f"log: {processes.log_path(settings, service.name)}" if not ok else ""
        print(f"  {service.name:<14} {'UP  ' if ok else 'DOWN'}  {detail}  {where}".rstrip())
    return 0 if all_ok else 1


def urls() -> int:
    settings = config.load()
    for service in services.SERVICES:
        if service.url:
            print(f"  {service.name:<14} {service.url(settings)}")
    password = services.airflow_admin_password(settings)
    if password:
        print(f"  airflow login: admin / {password}")
    return 0


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    command, args = argv[0], argv[1:]
    if command == "setup":
        setup()
        return 0
    if command == "up":
        return up(args)
    if command == "down":
        return down(args)
    if command == "status":
        return status()
    if command == "urls":
        return urls()
    if command == "demo":
        from patternalarm.stack import demo

        return demo.main(args)
    print(f"unknown command {command!r}\n{__doc__}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
