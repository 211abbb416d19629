"""Model versions: bundled read-only cards in models/, fine-tuned versions in the user-data folder.

A fine-tuned version is never activated automatically: `radassist models activate` writes the choice
to active.json in the user-data folder; without it the bundled card named by the task is used.
"""

from __future__ import annotations

import json
from pathlib import Path

from radassist.errors import ModelError
from radassist.paths import models_dir, user_data_dir

# task name -> bundled card file name
BUNDLED = {
    "classifier": "cxr_classifier.card.json",
    "lungseg": "lungseg.card.json",
}


def user_models_dir() -> Path:
    path = user_data_dir() / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _active_file() -> Path:
    return user_models_dir() / "active.json"


def active_choices() -> dict[str, str]:
    try:
        return json.loads(_active_file().read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def active_card_path(task: str) -> Path:
    """The card to use for a task: the activated user version if any, else the bundled card."""
    chosen = active_choices().get(task)
    if chosen and Path(chosen).exists():
        return Path(chosen)
    if task not in BUNDLED:
        raise ModelError(f"unknown model '{task}' (known: {', '.join(BUNDLED)})")
    return models_dir() / BUNDLED[task]
