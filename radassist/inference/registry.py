"""Model versions: bundled read-only cards in models/, fine-tuned versions in the user-data folder.

A new version is never activated automatically: `radassist models activate` records the choice (with a
history, so `rollback` can undo it) in active.json in the user-data folder; without a choice the bundled
card for the task is used.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from radassist.errors import InputRefused, ModelError
from radassist.paths import models_dir, user_data_dir

# task name -> bundled card file name
BUNDLED = {
    "classifier": "cxr_classifier.card.json",
    "lungseg": "lungseg.card.json",
    "chest_check": "chest_check.card.json",
}


def user_models_dir(create: bool = True) -> Path:
    """Fine-tuned model versions; `create=False` for reading (a read never creates folders)."""
    path = user_data_dir(create) / "models"
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def _active_file(create: bool = False) -> Path:
    return user_models_dir(create) / "active.json"


def _load_active() -> dict:
    try:
        return json.loads(_active_file().read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _save_active(state: dict) -> None:
    active = _active_file(create=True)
    tmp = active.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2), encoding="utf-8")
    tmp.replace(active)


def bundled_card_path(task: str) -> Path:
    if task not in BUNDLED:
        raise ModelError(f"unknown model '{task}' (known: {', '.join(BUNDLED)})")
    return models_dir() / BUNDLED[task]


def active_card_path(task: str) -> Path:
    """The card to use for a task: the activated user version if any, else the bundled card."""
    history = _load_active().get(task, [])
    if history and Path(history[-1]).exists():
        return Path(history[-1])
    return bundled_card_path(task)


@dataclass(frozen=True)
class ModelVersion:
    task: str
    card_path: Path
    model_id: str
    version: str
    bundled: bool
    active: bool


def _task_of(card: dict) -> str:
    return {"lung_segmentation": "lungseg", "chest_check": "chest_check"}.get(card.get("task", ""), "classifier")


def list_versions() -> list[ModelVersion]:
    cards = [(bundled_card_path(t), True) for t in BUNDLED if bundled_card_path(t).exists()]
    cards += [(p, False) for p in sorted(user_models_dir(create=False).glob("*/*.card.json"))]
    versions = []
    for path, bundled in cards:
        card = json.loads(path.read_text(encoding="utf-8"))
        task = _task_of(card)
        versions.append(ModelVersion(task, path, str(card.get("model_id")), str(card.get("version", "")), bundled,
                                     active_card_path(task).resolve() == path.resolve()))
    return versions


def activate(card_path: Path) -> ModelVersion:
    """Make a version the one every host uses (recorded with history for rollback)."""
    card_path = Path(card_path).resolve()
    match = next((v for v in list_versions() if v.card_path.resolve() == card_path), None)
    if match is None:
        raise InputRefused(f"{card_path} is not a registered model version (see `radassist models list`)")
    state = _load_active()
    state.setdefault(match.task, []).append(str(card_path))
    _save_active(state)
    return match


def rollback(task: str) -> Path:
    """Return to the previously active version of a task (the bundled one at the end of the history)."""
    state = _load_active()
    history = state.get(task, [])
    if not history:
        raise InputRefused(f"nothing to roll back: the bundled {task} model is already active")
    history.pop()
    state[task] = history
    _save_active(state)
    return active_card_path(task)
