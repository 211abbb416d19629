"""The model card as typed values: the single source of labels, thresholds, preprocessing and validated use.

The JSON card next to each ONNX file is written by training; every host reads it through `ModelCard`, so a field
is spelled in one place (here) and not as string keys across layers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from radassist.errors import ModelError
from radassist.results import AgeGroup


@dataclass(frozen=True)
class LabelSpec:
    """One classifier output as the card describes it."""

    id: str
    display_name: str
    threshold: float
    conditional_on: str | None = None  # meaningful only where that label is positive (e.g. viral_pattern)
    restrict_to_lungs: bool = True  # saliency kept to the lung fields (not for a finding of the heart)
    age_groups: tuple[AgeGroup, ...] = ()  # the age groups it was learnt and validated on (empty: every one)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LabelSpec:
        return cls(id=str(data["id"]), display_name=str(data.get("display_name", data["id"])),
                   threshold=float(data.get("threshold", 0.5)), conditional_on=data.get("conditional_on"),
                   restrict_to_lungs=bool(data.get("restrict_to_lungs", True)),
                   age_groups=tuple(AgeGroup(group) for group in data.get("age_groups", ())))

    def applies_to(self, age_group: AgeGroup | None) -> bool:
        """Whether this output is shown for a film of that age group (unknown age: only age-free outputs)."""
        return not self.age_groups or age_group in self.age_groups


@dataclass(frozen=True)
class ValidatedDomain:
    """What the model was validated on; anything else is 'outside validated use'."""

    min_age_years: float | None = None
    max_age_years: float | None = None
    views: tuple[str, ...] = ()
    description: str = ""

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> ValidatedDomain:
        data = data or {}
        return cls(min_age_years=data.get("min_age_years"), max_age_years=data.get("max_age_years"),
                   views=tuple(data.get("views", ())), description=str(data.get("image_type", "")))


@dataclass(frozen=True)
class OodReference:
    """Embedding-distance reference: distances above `threshold` are outside the training distribution."""

    mean: tuple[float, ...]
    scale: tuple[float, ...]
    threshold: float

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> OodReference | None:
        if not data or "mean" not in data:
            return None
        return cls(tuple(data["mean"]), tuple(data["scale"]), float(data["threshold"]))


@dataclass
class ModelCard:
    """The JSON card next to an ONNX file, with typed views of what hosts use. `data` keeps the whole card
    (metrics, training record) for display and export."""

    path: Path
    data: dict[str, Any]

    @classmethod
    def load(cls, card_path: Path) -> ModelCard:
        try:
            return cls(card_path, json.loads(card_path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            raise ModelError(f"model card {card_path} is missing") from None
        except IsADirectoryError:
            raise ModelError(f"model card {card_path} is a folder, not a file") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ModelError(f"model card {card_path} is not valid JSON ({exc})") from None

    @property
    def model_id(self) -> str:
        return str(self.data["model_id"])

    @property
    def version(self) -> str:
        return str(self.data.get("version", ""))

    @property
    def task(self) -> str:
        return str(self.data.get("task", "classification"))

    @property
    def onnx_path(self) -> Path:
        return self.path.parent / self.data["file"]

    @property
    def sha256(self) -> str:
        return str(self.data["sha256"])

    @property
    def input_name(self) -> str:
        return str(self.data.get("input", {}).get("name", "image"))

    @property
    def preprocessing(self) -> dict[str, Any]:
        return dict(self.data["preprocessing"])

    @cached_property
    def labels(self) -> tuple[LabelSpec, ...]:
        return tuple(LabelSpec.from_json(label) for label in self.data.get("labels", ()))

    def label(self, label_id: str) -> LabelSpec | None:
        return next((label for label in self.labels if label.id == label_id), None)

    @cached_property
    def validated_domain(self) -> ValidatedDomain:
        return ValidatedDomain.from_json(self.data.get("validated_domain"))

    @cached_property
    def ood(self) -> OodReference | None:
        return OodReference.from_json(self.data.get("ood"))
