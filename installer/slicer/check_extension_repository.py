#!/usr/bin/env python3
"""Check a generated SlicerRadAssist tree against the Slicer ExtensionsIndex rules that run offline.

    python3 installer/slicer/check_extension_repository.py OUT/SlicerRadAssist [--schema FILE]

The index's own checker (Slicer/ExtensionsIndex scripts/check_description_files.py) clones the
repository named by scm_url and downloads the schema and images, so it needs the network and a
published repository. This script applies the same rules to the local tree instead:

  description file   <Name>.json is valid JSON and validates against the catalog-entry JSON schema
  category           one the index accepts
  repository name    the scm_url repository name contains "Slicer"
  scm_url            scheme git or https
  CMakeLists.txt     at the repository ROOT, whose project() name equals the description file's name,
                     with EXTENSION_ICONURL and EXTENSION_SCREENSHOTURLS set to http(s) URLs; offline,
                     each URL must be a raw GitHub URL into this repository at scm_revision that names
                     a PNG file present in the tree (the index downloads it and checks it is an image)
  licence file       at the repository root
  build_dependencies none, or each named by another description file in --index
and, for the build factory, that the module's CMakeLists lists exactly the module's files (the package
holds only what SCRIPTS and RESOURCES name). Exit 0 when every check passes, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import urllib.parse
from collections.abc import Callable
from pathlib import Path

DEFAULT_SCHEMA = Path(__file__).resolve().parents[2] / "tests" / "slicer" / "slicer-extension-catalog-entry-schema-v1.0.2.json"
# Categories the index checker accepts (its ACCEPTED_EXTENSION_CATEGORIES), the subset a reading assistant fits.
ACCEPTED_CATEGORIES = ("Analysis", "Quantification", "Segmentation", "Informatics", "DICOM", "Utilities")
LICENCE_NAMES = ("LICENSE", "LICENCE", "License.txt", "license.txt", "LICENSE.txt", "COPYING", "COPYING.txt")
RAW_URL = re.compile(r"^https://raw\.githubusercontent\.com/(?P<owner>[^/]+)/(?P<repo>[^/]+)/(?P<ref>[^/]+)/(?P<path>.+)$")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class CheckFailed(Exception):
    pass


def cmake_set(text: str, variable: str) -> str | None:
    match = re.search(rf'set\s*\(\s*{variable}\s+"([^"]*)"\s*\)', text, flags=re.IGNORECASE)
    return match.group(1) if match else None


def cmake_list(text: str, variable: str) -> list[str]:
    match = re.search(rf"set\(\s*{variable}\s+(.*?)\)", text, flags=re.DOTALL)
    return match.group(1).split() if match else []


class Checker:
    def __init__(self, tree: Path, schema: Path, index: Path | None):
        self.tree, self.schema, self.index = tree, schema, index
        descriptions = sorted(tree.glob("*.json"))
        if len(descriptions) != 1:
            raise CheckFailed(f"expected one extension description file (*.json) at the root, found {len(descriptions)}")
        self.description = descriptions[0]
        self.name = self.description.stem
        self.entry: dict = {}

    def checks(self) -> list[tuple[str, Callable[[], str]]]:
        return [
            ("description file is JSON", self.parses),
            ("JSON schema", self.validates),
            ("category", self.category),
            ("git repository name", self.repository_name),
            ("SCM URL syntax", self.scm_url),
            ("CMakeLists.txt content", self.cmakelists),
            ("licence file", self.licence),
            ("build dependencies", self.dependencies),
            ("module file lists", self.module_lists),
        ]

    def parses(self) -> str:
        try:
            self.entry = json.loads(self.description.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise CheckFailed(f"{self.description.name}: {exc}") from None
        return self.description.name

    def validates(self) -> str:
        import jsonschema

        schema = json.loads(self.schema.read_text(encoding="utf-8"))
        expected = self.entry.get("$schema", "").split("#")[0].rsplit("/", 1)[-1]
        if expected != self.schema.name:
            raise CheckFailed(f"$schema names {expected!r}, checked against {self.schema.name}")
        try:
            jsonschema.validate(self.entry, schema)
        except jsonschema.ValidationError as exc:
            raise CheckFailed(f"{exc.message} at {'/'.join(map(str, exc.absolute_path))}") from None
        return self.schema.name

    def category(self) -> str:
        if self.entry.get("category") not in ACCEPTED_CATEGORIES:
            raise CheckFailed(f"category {self.entry.get('category')!r} is not one the index accepts")
        return self.entry["category"]

    def repository_name(self) -> str:
        name = Path(urllib.parse.urlsplit(self.entry["scm_url"]).path).stem
        if "slicer" not in name.lower():
            raise CheckFailed(f"repository name {name!r} does not contain 'Slicer' (e.g. 'Slicer{name}')")
        return name

    def scm_url(self) -> str:
        url = self.entry["scm_url"]
        if "://" not in url or urllib.parse.urlsplit(url).scheme not in ("git", "https"):
            raise CheckFailed(f"scm_url {url!r} is not git:// or https://")
        return url

    def cmakelists(self) -> str:
        path = self.tree / "CMakeLists.txt"
        if not path.is_file():
            raise CheckFailed("CMakeLists.txt not found in the repository root")
        text = path.read_text(encoding="utf-8")
        project = re.findall(r"project\s*\(\s*([^\s)]+)", text, flags=re.IGNORECASE)
        if not project or project[0].strip("\"'") != self.name:
            raise CheckFailed(f"project() name {project[:1]} does not match the description file name {self.name!r}")
        icon = cmake_set(text, "EXTENSION_ICONURL")
        screenshots = (cmake_set(text, "EXTENSION_SCREENSHOTURLS") or "").split()
        if not icon or not screenshots:
            raise CheckFailed("EXTENSION_ICONURL or EXTENSION_SCREENSHOTURLS is not set")
        for url in [icon, *screenshots]:
            self._image_in_tree(url)
        for variable in ("EXTENSION_HOMEPAGE", "EXTENSION_CATEGORY", "EXTENSION_CONTRIBUTORS", "EXTENSION_DESCRIPTION"):
            if not cmake_set(text, variable):
                raise CheckFailed(f"{variable} is not set")
        if cmake_set(text, "EXTENSION_CATEGORY") != self.entry["category"]:
            raise CheckFailed("EXTENSION_CATEGORY differs from the description file's category")
        return f"project({self.name}); icon and {len(screenshots)} screenshot(s) are PNGs in this tree"

    def _image_in_tree(self, url: str) -> None:
        if not url.startswith("http"):
            raise CheckFailed(f"{url!r} is not an http(s) URL")
        match = RAW_URL.match(url)
        owner_repo = urllib.parse.urlsplit(self.entry["scm_url"]).path.strip("/").removesuffix(".git")
        if not match or f"{match['owner']}/{match['repo']}" != owner_repo or match["ref"] != self.entry["scm_revision"]:
            raise CheckFailed(f"{url} is not a raw URL into {owner_repo} at {self.entry['scm_revision']}")
        local = self.tree / match["path"]
        if not local.is_file() or not local.read_bytes().startswith(PNG_MAGIC):
            raise CheckFailed(f"{url} names {match['path']}, which is not a PNG file in this tree")

    def licence(self) -> str:
        found = next((name for name in LICENCE_NAMES if (self.tree / name).is_file()), None)
        if not found:
            raise CheckFailed("no licence file in the repository root")
        return found

    def dependencies(self) -> str:
        needed = [d for d in self.entry.get("build_dependencies", []) if d]
        known = {p.stem for p in self.index.glob("*.json")} if self.index else set()
        missing = [d for d in needed if d not in known]
        if missing:
            raise CheckFailed(f"extensions {missing} are not in the index")
        return "none" if not needed else ", ".join(needed)

    def module_lists(self) -> str:
        root = (self.tree / "CMakeLists.txt").read_text(encoding="utf-8")
        summary = []
        for module in re.findall(r"add_subdirectory\(\s*([^\s)]+)\s*\)", root):
            text = (self.tree / module / "CMakeLists.txt").read_text(encoding="utf-8")
            listed = set(cmake_list(text, "MODULE_PYTHON_SCRIPTS")) | set(cmake_list(text, "MODULE_PYTHON_RESOURCES"))
            on_disk = {p.relative_to(self.tree / module).as_posix() for p in (self.tree / module).rglob("*")
                       if p.is_file() and p.name != "CMakeLists.txt"}
            if listed != on_disk:
                raise CheckFailed(f"{module}: not listed {sorted(on_disk - listed)[:5]}, listed but absent "
                                  f"{sorted(listed - on_disk)[:5]}")
            summary.append(f"{module}: {len(listed)} files")
        if not summary:
            raise CheckFailed("the root CMakeLists.txt adds no module")
        return "; ".join(summary)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tree", type=Path, help="the generated SlicerRadAssist folder")
    parser.add_argument("--schema", type=Path, default=DEFAULT_SCHEMA, help="the catalog-entry JSON schema")
    parser.add_argument("--index", type=Path, help="a checkout of ExtensionsIndex, for build_dependencies")
    args = parser.parse_args(argv)
    try:
        checker = Checker(args.tree, args.schema, args.index)
    except CheckFailed as exc:
        print(f"FAIL {exc}")
        return 1
    failed = 0
    for title, check in checker.checks():
        try:
            print(f"ok    {title}: {check()}")
        except (CheckFailed, KeyError) as exc:
            failed += 1
            print(f"FAIL  {title}: {exc}")
    print(f"{checker.name}: {len(checker.checks()) - failed} checks passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
