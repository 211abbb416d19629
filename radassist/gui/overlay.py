"""The saliency overlay's state: which finding's map, colormap, threshold, opacity, shown or not."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from PySide6.QtCore import QObject, Signal

from radassist.imaging.display import COLORMAPS, saliency_bytes
from radassist.results import ReadResult


class OverlayState(QObject):
    changed = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.maps: Mapping[str, np.ndarray] = {}  # label -> the read's float [0, 1] map at image size
        self._quantised: dict[str, np.ndarray] = {}  # label -> uint8 copy, made when first displayed
        self.serial = 0  # changes with every new result so cached colour layers are never reused
        self.label: str | None = None
        self.visible = True
        self.opacity = 0.4
        self.colormap = COLORMAPS[0]
        self.threshold = 0.2  # saliency below this (0..1) is not coloured

    def set_result(self, result: ReadResult | None) -> None:
        """Take the result's maps; select the most probable positive finding (else the most probable)."""
        self.serial += 1
        # Quantised on first display, not here: at 3000 x 3000 each map costs ~30 ms on the GUI thread.
        # The complete result of a read carries the maps its findings-first copy showed: keep those.
        maps = result.saliency if result else {}
        if maps is not self.maps:
            self.maps, self._quantised = maps, {}
        findings = [f for f in (result.findings if result else []) if f.label in self.maps]
        ranked = sorted(findings, key=lambda f: (f.positive, f.probability), reverse=True)
        self.label = ranked[0].label if ranked else None
        self.changed.emit()

    def current_map(self) -> np.ndarray | None:
        """The shown finding's map as uint8 at image size, or None when nothing is shown."""
        if not (self.visible and self.label in self.maps):
            return None
        if self.label not in self._quantised:
            # A read's SaliencyMaps quantise at their working resolution (~100 ms less at 3000 x 3000);
            # asked by name, so start-up does not import the explain package (and Pillow) for it.
            as_uint8 = getattr(self.maps, "as_uint8", None)
            self._quantised[self.label] = as_uint8(self.label) if as_uint8 else saliency_bytes(self.maps[self.label])
        return self._quantised[self.label]

    def set_label(self, label: str | None) -> None:
        self.label = label if label in self.maps else None
        self.changed.emit()

    def set_visible(self, visible: bool) -> None:
        self.visible = bool(visible)
        self.changed.emit()

    def set_opacity(self, opacity: float) -> None:
        self.opacity = float(np.clip(opacity, 0.0, 1.0))
        self.changed.emit()

    def set_colormap(self, name: str) -> None:
        if name not in COLORMAPS:
            raise ValueError(f"unknown colormap {name!r}; known: {', '.join(COLORMAPS)}")
        self.colormap = name
        self.changed.emit()

    def next_colormap(self) -> str:
        self.set_colormap(COLORMAPS[(COLORMAPS.index(self.colormap) + 1) % len(COLORMAPS)])
        return self.colormap

    def set_threshold(self, threshold: float) -> None:
        self.threshold = float(np.clip(threshold, 0.0, 0.99))
        self.changed.emit()
