"""Read configuration from the environment, failing loudly on anything malformed.

Every variable read here is listed in `.env.example`. A secret may also come from a file
named by `<NAME>_FILE` (Docker and Kubernetes secrets).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_MISSING = object()


def _get(name: str) -> str | None:
    """The variable's value; a blank one (NAME= in an env file) counts as not set."""
    value = os.environ.get(name)
    return None if value is None or not value.strip() else value


def env_str(name: str, default: str | object = _MISSING) -> str:
    value = _get(name)
    if value is None:
        if default is _MISSING:
            raise ImproperlyConfigured(f"Set the {name} environment variable (see .env.example).")
        return default  # type: ignore[return-value]
    return value


def env_bool(name: str, default: bool) -> bool:
    value = _get(name)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {value!r}.")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    value = _get(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {value!r}.") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {number}.")
    return number


def env_list(name: str, default: list[str]) -> list[str]:
    value = _get(name)
    if value is None:
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


def env_secret(name: str, *, required: bool) -> str | None:
    """`NAME`, or the contents of the file named by `NAME_FILE`; never both."""
    direct = _get(name)
    file_name = _get(f"{name}_FILE")
    if direct and file_name:
        raise ImproperlyConfigured(f"Set {name} or {name}_FILE, not both.")
    if file_name:
        path = Path(file_name)
        if not path.is_file():
            raise ImproperlyConfigured(f"{name}_FILE points to {file_name}, which is not a readable file.")
        direct = path.read_text(encoding="utf-8").strip()
        if not direct:
            raise ImproperlyConfigured(f"{name}_FILE points to {file_name}, which is empty.")
    if not direct:
        if required:
            raise ImproperlyConfigured(f"Set {name} (or {name}_FILE); it is required.")
        return None
    return direct


def env_json(name: str, default: Any) -> Any:
    """A JSON value from `NAME` (or the file named by `NAME_FILE`); malformed JSON refuses to start."""
    text = env_secret(name, required=False)
    if text is None:
        return default
    try:
        return json.loads(text)
    except ValueError as error:
        raise ImproperlyConfigured(f"{name} must be valid JSON: {error}") from None
