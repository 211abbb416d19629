"""RadAssist: a chest X-ray reading assistant that keeps the radiologist in charge.

Data flows as plain objects: io -> imaging -> inference -> explain -> findings -> (gui | slicer host), with
feedback closing the loop. Imports follow the layers contract in pyproject.toml (README, Architecture), which
differs in one place: imaging imports inference (lung segmentation runs the anatomy model), not the reverse.
Importing the package is cheap on purpose: every heavy dependency is imported where it is used.

Every entry point (the CLI, the viewer, the frozen bundle, the Slicer module's core) imports this package
before anything loads onnxruntime, so this is where onnxruntime's telemetry is turned off: without it,
onnxruntime writes a device id and queued usage events under ~/.cache/Microsoft on every run.
"""

import os

os.environ["ORT_DISABLE_TELEMETRY"] = "1"  # read by onnxruntime when it loads: must precede that import

__version__ = "0.1.0"
