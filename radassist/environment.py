"""The environment variables RadAssist reads, checked once at start-up with a message that says what to fix.

Without this, a bad value was silently ignored where it is used (RADASSIST_THREADS=two ran with the
default thread count). Each variable is one row: its name, what it means and what makes a value bad.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from radassist.errors import InputRefused

MAX_THREADS = 256


@dataclass(frozen=True)
class EnvironmentVariable:
    name: str
    meaning: str
    problem: Callable[[str], str | None]  # the value -> what is wrong with it, or None when it is fine


def _positive_int(value: str) -> str | None:
    if not value.strip().isdigit() or not 1 <= int(value) <= MAX_THREADS:
        return f"must be a whole number from 1 to {MAX_THREADS}"
    return None


def _provider(value: str) -> str | None:
    from radassist.inference.engine import PROVIDER_ALIASES, PROVIDER_PREFERENCE

    if value.lower() in PROVIDER_ALIASES or value in PROVIDER_PREFERENCE:
        return None
    return f"must be one of {', '.join(sorted(set(PROVIDER_ALIASES)))}"


def _folder_or_creatable(value: str) -> str | None:
    if not value.strip():
        return "is empty; unset it or name a folder"
    path = Path(value).expanduser()
    if path.exists() and not path.is_dir():
        return "names a file, not a folder"
    return None


def _existing_folder(value: str) -> str | None:
    return None if Path(value).expanduser().is_dir() else "is not an existing folder"


def _existing_file(value: str) -> str | None:
    return None if Path(value).expanduser().is_file() else "is not an existing file"


VARIABLES: tuple[EnvironmentVariable, ...] = (
    EnvironmentVariable("RADASSIST_THREADS", "threads per model session", _positive_int),
    EnvironmentVariable("RADASSIST_PROVIDER", "the onnxruntime execution provider to prefer", _provider),
    EnvironmentVariable("RADASSIST_DATA_DIR", "the user-data folder (feedback store, settings)",
                        _folder_or_creatable),
    EnvironmentVariable("RADASSIST_LOG_DIR", "the folder of the viewer's log", _folder_or_creatable),
    EnvironmentVariable("RADASSIST_MODELS_DIR", "the folder of the bundled models", _existing_folder),
    EnvironmentVariable("RADASSIST_SITE_KEY_FILE", "the site's pseudonym key file", _existing_file),
)


def check_environment(environ: Mapping[str, str] | None = None) -> None:
    """Refuse (exit 2 through the CLI) on the first variable that is set to an unusable value."""
    environ = os.environ if environ is None else environ
    for variable in VARIABLES:
        value = environ.get(variable.name)
        if value is None:
            continue
        problem = variable.problem(value)
        if problem:
            raise InputRefused(f"{variable.name}={value!r} ({variable.meaning}) {problem}")
