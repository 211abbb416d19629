"""The Qt binding itself: a viewer session emits thousands of signals from Python, and it must survive them.

PySide6 6.12.0 dropped a reference to Python's True on every `Signal.emit()` from Python; after a few
hundred emits the interpreter aborted with "bool_dealloc: deallocating True or False" (found by
benchmarks/bench_window_level.py, whose process died at exit). pyproject.toml excludes that release.
"""

from __future__ import annotations

import subprocess
import sys

EMITS = 5000
SCRIPT = f"""
import sys
from PySide6.QtCore import QCoreApplication, QObject, Signal

class Emitter(QObject):
    plain = Signal()
    flag = Signal(bool)
    message = Signal(str, bool)

app = QCoreApplication([])
emitter = Emitter()
received = []
emitter.flag.connect(received.append)
before = sys.getrefcount(True)
for _ in range({EMITS}):
    emitter.plain.emit()
    emitter.flag.emit(True)
    emitter.message.emit("refused", True)
received.clear()
print(before - sys.getrefcount(True))
"""


def test_emitting_signals_from_python_keeps_true_alive():
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout.strip()) == 0, "references to True were lost while emitting signals"
