"""Honest licences: the full Apache-2.0 text, and third-party notices that name every library a runtime
installation contains (taken from the installed metadata, not a hand-kept list) and ship everywhere."""

from __future__ import annotations

import importlib.metadata
import json
import re
from pathlib import Path

import tomllib
from packaging.requirements import Requirement

APACHE_SECTIONS = ("1. Definitions.", "2. Grant of Copyright License.", "3. Grant of Patent License.",
                   "4. Redistribution.", "5. Submission of Contributions.", "6. Trademarks.",
                   "7. Disclaimer of Warranty.", "8. Limitation of Liability.",
                   "9. Accepting Warranty or Additional Liability.", "END OF TERMS AND CONDITIONS")


def normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def runtime_closure(pyproject: Path) -> set[str]:
    """Every distribution a runtime install pulls in (no extras): pyproject.toml's dependencies, then
    theirs from the installed metadata."""
    seen: set[str] = set()
    pending = [Requirement(line).name for line in tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"][
        "dependencies"]]
    while pending:
        name = pending.pop()
        try:
            distribution = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue  # e.g. a marker-only dependency for another platform
        if normalised(name) in seen:
            continue
        seen.add(normalised(name))
        for line in distribution.requires or []:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                pending.append(requirement.name)
    return seen


def test_licence_is_the_full_apache_2_text(repo_root: Path):
    text = (repo_root / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    positions = [text.index(section) for section in APACHE_SECTIONS]
    assert positions == sorted(positions)
    assert len(text) > 10_000


def test_notices_name_every_runtime_library(repo_root: Path):
    notices = (repo_root / "THIRD_PARTY_NOTICES").read_text(encoding="utf-8")
    listed = {normalised(m.group(1)) for m in re.finditer(r"^\| ([A-Za-z0-9_.\-]+)\s+\|", notices, re.MULTILINE)}
    closure = runtime_closure(repo_root / "pyproject.toml")
    assert len(closure) > 15
    missing = sorted(closure - listed)
    assert not missing, f"runtime dependencies missing from THIRD_PARTY_NOTICES: {missing}"


def test_notices_cover_qt_the_transcribed_table_and_the_model_data(repo_root: Path):
    notices = (repo_root / "THIRD_PARTY_NOTICES").read_text(encoding="utf-8")
    assert "LGPL-3.0" in notices and "download.qt.io" in notices
    assert "Copyright (c) 2020, Kitware Europe" in notices and "BSD 3-Clause License" in notices
    assert "basic_profile.py" in notices
    trained_on = set()
    for card in sorted((repo_root / "models").glob("*.card.json")):
        data = json.loads(card.read_text(encoding="utf-8")).get("training", {}).get("data", [])
        trained_on |= {entry.get("folder") or entry.get("name") for entry in data}
    assert trained_on, "no model card lists its training data"
    missing = sorted(folder for folder in trained_on if folder not in notices)
    assert not missing, f"training data of a bundled model missing from THIRD_PARTY_NOTICES: {missing}"
    assert "non-commercial" in notices


def test_wheel_metadata_and_bundle_ship_both_files(repo_root: Path):
    pyproject = (repo_root / "pyproject.toml").read_text(encoding="utf-8")
    assert 'license-files = ["LICENSE", "THIRD_PARTY_NOTICES"]' in pyproject
    spec = (repo_root / "installer" / "pyinstaller" / "radassist.spec").read_text(encoding="utf-8")
    assert '(str(REPO / "LICENSE"), ".")' in spec and '(str(REPO / "THIRD_PARTY_NOTICES"), ".")' in spec
