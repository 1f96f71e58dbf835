"""The two registry questions every venv may ask, over plain HTTP (standard library only).

``champion_version``: which version of the registered model the serving alias names (MLflow REST
API), so the stack CLI can tell a fresh registry without importing mlflow. ``reload_serving``: ask a
running scoring service to pick a newly promoted version up now instead of at its next poll.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request

from patternalarm.config import Settings

# What MLflow answers for "no such registered model / no such alias" (2.9: 400 INVALID_PARAMETER_VALUE).
_NOT_FOUND_CODES = {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"}


class RegistryUnavailable(RuntimeError):
    """MLflow could not be asked; the message names the URL."""


def champion_version(settings: Settings, timeout_s: float = 10.0) -> str | None:
    """The version behind settings.model_alias of settings.model_name, or None when there is none."""
    query = urllib.parse.urlencode({"name": settings.model_name, "alias": settings.model_alias})
    url = f"{settings.resolved_mlflow_url()}/api/2.0/mlflow/registered-models/alias?{query}"
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return str(json.loads(response.read())["model_version"]["version"])
    except urllib.error.HTTPError as exc:
        try:
            code = json.loads(exc.read()).get("error_code")
        except ValueError:
            code = None
        if exc.code in (400, 404) and code in _NOT_FOUND_CODES:
            return None
        raise RegistryUnavailable(f"MLflow at {url} answered HTTP {exc.code} ({code})") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise RegistryUnavailable(f"MLflow at {url} unreachable: {exc}; start it with "
                                  "`make up SERVICES=\"postgres mlflow\"`") from exc


def reload_serving(settings: Settings, timeout_s: float = 60.0) -> str:
    """POST /admin/reload on the scoring service; a one-line outcome ("not running" if it is not)."""
    url = f"{settings.resolved_serving_url()}/admin/reload"
    request = urllib.request.Request(url, data=b"", method="POST", headers={"X-API-Key": settings.api_key})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as exc:  # 409 refused, 502/503 registry trouble: the body says why
        try:
            body = json.loads(exc.read())
        except ValueError:
            return f"HTTP {exc.code}"
        return f"HTTP {exc.code}: {body.get('outcome', '')} {body.get('detail', '')}".strip()
    except (urllib.error.URLError, OSError):
        return f"not running at {settings.resolved_serving_url()}"
    return f"{body.get('outcome')}: {body.get('detail')}"
