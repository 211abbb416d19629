#!/usr/bin/env bash
# UNTESTED HERE: written on Linux, never run on macOS by this project yet (see installer/README.md).
#
# Build RadAssist.app (PyInstaller, windowed) and a drag-to-Applications disk image on macOS:
#     installer/macos/build_app.sh
# Needs: Python 3.11 (python.org or Homebrew; $PYTHON), Xcode command line tools, network for pip.
# Output: dist/RadAssist.app and dist/RadAssist-<version>.dmg (unsigned: see installer/README.md).
#
# The same spec as Linux: on macOS it adds the windowed launcher `radassist-viewer` (the .app's main
# executable, opens the viewer) beside the `radassist` CLI, and wraps the folder as RadAssist.app with
# installer/icons/radassist.icns. Provider: the standard onnxruntime macOS wheel includes CoreML;
# radassist.inference.engine.choose_providers puts CoreMLExecutionProvider before the CPU.
set -euo pipefail
cd "$(dirname "$0")/../.."

# Build dist/radassist (+ dist/RadAssist.app) and self-test the one-folder build: shared with Linux.
installer/build_bundle.sh

APP=dist/RadAssist.app
echo "build_app: self-test inside $APP" >&2
QT_QPA_PLATFORM=offscreen "$APP/Contents/MacOS/radassist" --selftest

version=$(build/bundle-venv/bin/python -c "import radassist; print(radassist.__version__)")
staging=$(mktemp -d)
trap 'rm -rf "$staging"' EXIT
cp -R "$APP" "$staging/"
ln -s /Applications "$staging/Applications"
hdiutil create -volname RadAssist -srcfolder "$staging" -ov -format UDZO "dist/RadAssist-$version.dmg"
echo "build_app: dist/RadAssist-$version.dmg ($(du -sh "dist/RadAssist-$version.dmg" | cut -f1))"
