"""Per-image result files: names that cannot collide, atomic writes, and which results are complete.

A result mirrors the image's path relative to the source folder under OUT/results/ (`a/IM0001` ->
`results/a/IM0001.json`), so same-named files in different folders keep separate results. Files are written
through `radassist.outputs.OutputWriter` (temporary file + rename: a killed run leaves whole files or none).
A result is complete when it parses, names the same source, and the source's size and modification time
still match: that is what `--resume` skips.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from radassist.batch.sources import BatchItem
from radassist.outputs import OutputWriter

RESULTS_FOLDER = "results"


def result_path(out: Path, item: BatchItem) -> Path:
    *folders, name = item.relative.split("/")
    return out.joinpath(RESULTS_FOLDER, *folders, name + ".json")


def provenance(item: BatchItem, study: str) -> dict:
    """The `batch` block of a result: which source it is the result of, as it was when read."""
    status = os.stat(item.path)
    return {"source": item.relative, "study": study, "source_bytes": status.st_size,
            "source_mtime_ns": status.st_mtime_ns, "complete": True}


def positive_labels(payload: dict) -> list[str]:
    return [finding["label"] for finding in payload.get("findings", []) if finding.get("status") == "positive"]


def total_ms(payload: dict) -> float:
    return round(sum(float(v) for v in payload.get("timings_ms", {}).values()), 1)


def complete_result(out: Path, item: BatchItem) -> dict | None:
    """The payload of an earlier run's result for this image, or None when it must be read (again)."""
    path = result_path(out, item)
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
        batch = payload["batch"]
        status = os.stat(item.path)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if (batch.get("complete") is not True or batch.get("source") != item.relative
            or batch.get("source_bytes") != status.st_size or batch.get("source_mtime_ns") != status.st_mtime_ns):
        return None
    return payload


def write_result(writer: OutputWriter, out: Path, item: BatchItem, payload: dict) -> Path:
    """Write one result atomically; raises radassist.outputs.OutputRefused when it cannot be written."""
    path = result_path(out, item)
    writer.folder(path.parent)
    writer.write_bytes(path, json.dumps(payload, indent=1).encode("utf-8"))
    return path
