#!/usr/bin/env bash
# Build the one-folder RadAssist application (dist/radassist/) from a fresh clone, then self-test it.
#
#   installer/build_bundle.sh            (Linux; macOS: installer/macos/build_app.sh; Windows: installer/windows/build.ps1)
#
# 1. creates (or reuses) the build venv build/bundle-venv with the RUNTIME dependencies only (no torch,
#    no test tools) and PyInstaller (pinned below);
# 2. runs PyInstaller on installer/pyinstaller/radassist.spec;
# 3. runs the built binary's `--selftest` headless (QT_QPA_PLATFORM=offscreen, a throw-away user-data
#    folder) and fails if it fails;
# 4. prints the build time and the bundle size.
# Needs network for step 1 only (PyPI). Python: $PYTHON, default python3 (3.10+; 3.11 is what we test).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

PYTHON=${PYTHON:-python3}
VENV=${BUILD_VENV:-build/bundle-venv}
PYINSTALLER_VERSION=6.22.3
DIST=dist
started=$(date +%s)

if [ ! -x "$VENV/bin/python" ]; then
    echo "build_bundle: creating $VENV" >&2
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
fi
# `pip install .` brings the runtime dependencies exactly as pyproject.toml states them; the spec
# bundles this checkout's radassist source (not the installed copy).
"$VENV/bin/python" -m pip install --quiet . "pyinstaller==$PYINSTALLER_VERSION"
"$VENV/bin/python" -c "import torch" 2>/dev/null && { echo "build_bundle: error: torch is in $VENV" >&2; exit 1; }
ls models/*.card.json >/dev/null 2>&1 || { echo "build_bundle: error: models/ holds no model card" >&2; exit 1; }

"$VENV/bin/python" -m PyInstaller --noconfirm --log-level WARN --distpath "$DIST" --workpath build/pyinstaller \
    installer/pyinstaller/radassist.spec
built=$(date +%s)

# First run as on a new workstation: an empty home (so platformdirs picks a fresh user-data folder),
# no display, started from another folder.
echo "build_bundle: self-test of the built binary" >&2
first_run_home=$(mktemp -d)
trap 'rm -rf "$first_run_home"' EXIT
(cd "$first_run_home" && env -u DISPLAY -u WAYLAND_DISPLAY -u XDG_DATA_HOME -u RADASSIST_DATA_DIR \
    -u RADASSIST_MODELS_DIR HOME="$first_run_home" QT_QPA_PLATFORM=offscreen "$ROOT/$DIST/radassist/radassist" --selftest)

size=$(du -sh "$DIST/radassist" | cut -f1)
files=$(find "$DIST/radassist" -type f | wc -l)
echo "build_bundle: built $DIST/radassist/radassist in $((built - started)) s (PyInstaller $PYINSTALLER_VERSION);" \
     "bundle $size in $files files; self-test passed"
