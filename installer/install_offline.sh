#!/usr/bin/env bash
# Install RadAssist on an OFFLINE Linux/macOS workstation from a wheelhouse made by build_wheelhouse.py.
#
#   installer/install_offline.sh WHEELHOUSE [VENV]        (VENV defaults to ./radassist-venv)
#
# Creates a virtual environment with the workstation's Python 3.10+, installs from the wheelhouse only
# (`pip install --no-index --find-links WHEELHOUSE radassist`), then runs `radassist --selftest`.
# pip is kept from the network and from this machine's pip configuration (an index or find-links set
# in /etc/pip.conf, ~/.config/pip or PIP_* variables could otherwise add other sources), so what gets
# installed is exactly what the wheelhouse holds.
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
    echo "usage: $0 WHEELHOUSE [VENV]" >&2
    exit 2
fi
WHEELHOUSE=$(cd "$1" && pwd)
VENV=${2:-radassist-venv}
PYTHON=${PYTHON:-python3}

ls "$WHEELHOUSE"/radassist-*.whl >/dev/null 2>&1 \
    || { echo "install_offline: error: $WHEELHOUSE holds no radassist wheel" >&2; exit 2; }

# No configuration files, no index, no extra sources: the wheelhouse or nothing.
for var in $(env | grep -o '^PIP_[A-Z_]*' || true); do unset "$var"; done
export PIP_CONFIG_FILE=/dev/null PIP_NO_INDEX=1 PIP_DISABLE_PIP_VERSION_CHECK=1
export PIP_INDEX_URL=http://127.0.0.1:9/  # a closed port: any index access would fail loudly

"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip config list  # shows only the four settings above: no configuration file is read
"$VENV/bin/python" -m pip install --no-index --find-links "$WHEELHOUSE" radassist
"$VENV/bin/python" -m pip list --format=freeze
QT_QPA_PLATFORM=${QT_QPA_PLATFORM:-offscreen} "$VENV/bin/radassist" --selftest
echo "installed: $VENV/bin/radassist (try: $VENV/bin/radassist demo)"
