"""Fixtures for the 3D Slicer extension's tests.

The Logic runs on REAL MRML classes from the PyPI package slicer-core (vtkMRMLScene, volume, colour and
slice-composite nodes, slicer.util). What slicer-core lacks is the Slicer *application*: its PythonQt
modules `qt` and `ctk` and `slicer.ScriptedLoadableModule` (the module base classes). Only those are
replaced here, by the stand-ins below, named as such; inside Slicer the real ones are used.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types

import pytest
from extension_layout import MODULE_DIR


class _StandInScriptedLoadableModuleBase:
    """STAND-IN for Slicer's application-only base classes: stores the parent, does nothing else."""

    def __init__(self, parent=None):
        self.parent = parent


def _slicer_application_standins() -> dict[str, types.ModuleType]:
    """Stand-in modules for what only the Slicer application provides (the Logic uses none of them)."""
    scripted = types.ModuleType("slicer.ScriptedLoadableModule")
    scripted.__doc__ = "STAND-IN for the Slicer application's slicer.ScriptedLoadableModule (tests only)"
    for name in ("ScriptedLoadableModule", "ScriptedLoadableModuleWidget", "ScriptedLoadableModuleLogic",
                 "ScriptedLoadableModuleTest"):
        setattr(scripted, name, type(name, (_StandInScriptedLoadableModuleBase,), {}))
    qt = types.ModuleType("qt")
    qt.__doc__ = "STAND-IN for Slicer's PythonQt 'qt' module (tests only; the Logic never uses Qt)"
    ctk = types.ModuleType("ctk")
    ctk.__doc__ = "STAND-IN for Slicer's 'ctk' module (tests only; the Logic never uses CTK)"
    return {"slicer.ScriptedLoadableModule": scripted, "qt": qt, "ctk": ctk}


@pytest.fixture(scope="session")
def slicer_core():
    """The real `slicer` package of slicer-core (skips the Logic tests where it is not installed)."""
    return pytest.importorskip("slicer", reason="the PyPI package slicer-core is not installed")


@pytest.fixture(scope="module")
def radassist_module(slicer_core):
    """RadAssistModule.py imported on slicer-core, with stand-ins only for the application modules."""
    replaced = {}
    standins = {}
    if importlib.util.find_spec("qt") is None:  # not inside Slicer's Python
        standins = _slicer_application_standins()
    for name, module in standins.items():
        replaced[name] = sys.modules.get(name)
        sys.modules[name] = module
    if standins:
        slicer_core.ScriptedLoadableModule = standins["slicer.ScriptedLoadableModule"]
    sys.path.insert(0, str(MODULE_DIR))
    try:
        module = importlib.import_module("RadAssistModule")
        yield module
    finally:
        sys.path.remove(str(MODULE_DIR))
        for name in ("RadAssistModule", "RadAssistModuleLib", "RadAssistModuleLib.Dependencies"):
            sys.modules.pop(name, None)
        for name, previous in replaced.items():
            if previous is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = previous
        if standins:
            del slicer_core.ScriptedLoadableModule


@pytest.fixture()
def scene(slicer_core, monkeypatch):
    """A fresh real vtkMRMLScene as slicer.mrmlScene, with the three slice views' composite nodes
    that Slicer's default layout creates (setSliceViewerLayers acts on those)."""
    scene = slicer_core.vtkMRMLScene()
    for view in ("Red", "Yellow", "Green"):
        composite = slicer_core.vtkMRMLSliceCompositeNode()
        composite.SetLayoutName(view)
        scene.AddNode(composite)
    monkeypatch.setattr(slicer_core, "mrmlScene", scene, raising=False)
    yield scene
    scene.Clear(True)
