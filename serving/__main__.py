"""``python -m serving``: the scoring service in uvicorn, one worker, on PA_SERVING_HOST:PA_SERVING_PORT.

One worker because the hot-swap guarantee (one model reference, one poller) is per process; scale
out with more processes behind a balancer, each polling the registry itself.
"""

from __future__ import annotations

import logging
import sys

import uvicorn
from pydantic import ValidationError

from serving.app import create_app
from serving.settings import ServingSettings


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = ServingSettings()
    except (ValidationError, ValueError) as exc:
        print(f"serving: refusing to start: {exc}", file=sys.stderr)
        return 2
    uvicorn.run(create_app(settings), host=settings.serving_host, port=settings.serving_port, workers=1,
                access_log=settings.access_log, log_level="info", timeout_graceful_shutdown=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
