"""The code that runs inside a batch worker (a local process or a Ray actor).

A `BatchWorker` loads the models once (ONNX sessions, pyradiomics, knowledge graph) and then reads one
image per call with `read_radiograph`, returning an `Outcome` (the JSON payload travels back to the
driver, which alone writes files). An image the program refuses is an outcome, not an error.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass, field

from radassist.batch.sources import BatchItem

log = logging.getLogger(__name__)


class ImageStatus(str, enum.Enum):
    READ = "read"  # a complete result exists
    REFUSED = "refused"  # the program declined the input (unreadable, not a chest radiograph, ...)
    FAILED = "failed"  # no result: the worker was lost or hit an unexpected error; read it again with --resume


@dataclass
class Outcome:
    item: BatchItem
    status: ImageStatus
    reason: str = ""
    study: str = ""
    positive: list[str] = field(default_factory=list)
    total_ms: float | None = None
    payload: dict | None = None  # the result JSON (READ only)

    @classmethod
    def without_result(cls, item: BatchItem, status: ImageStatus, reason: str) -> Outcome:
        return cls(item, status, reason, known_study(item))


@dataclass(frozen=True)
class WorkerOptions:
    record: bool = False  # store each AI result as an unsigned session in the feedback store
    store: str | None = None


def folder_key(relative: str) -> str:
    """The study key of an image without a Study Instance UID: folder:<its folder relative to the source>."""
    return f"folder:{relative.rpartition('/')[0] or '.'}"


def known_study(item: BatchItem) -> str:
    """The study key known before reading: the DICOMDIR's Study Instance UID, else the folder key."""
    return item.study_uid or folder_key(item.relative)


class BatchWorker:
    """Holds the loaded models; `read` never raises."""

    def __init__(self, options: WorkerOptions = WorkerOptions()) -> None:
        from radassist.errors import RadAssistError
        from radassist.pipeline.read import prepare_read

        self.options = options
        self._startup_error = ""
        try:
            prepare_read()
        except RadAssistError as exc:  # e.g. a model file that does not match its card
            self._startup_error = str(exc)

    def startup_error(self) -> str:
        """Why this worker cannot read anything ("" when it can)."""
        return self._startup_error

    def read(self, item: BatchItem) -> Outcome:
        from radassist.errors import RadAssistError

        if self._startup_error:
            return Outcome.without_result(item, ImageStatus.FAILED, f"worker could not start: {self._startup_error}")
        try:
            return self._read(item)
        except RadAssistError as exc:
            return Outcome.without_result(item, ImageStatus.REFUSED, str(exc))
        except Exception as exc:  # noqa: BLE001  one image's bug must not stop an archive; reported in its row
            log.debug("unexpected error reading %s", item.relative, exc_info=True)
            return Outcome.without_result(item, ImageStatus.FAILED, f"unexpected error: {type(exc).__name__}: {exc}")

    def _read(self, item: BatchItem) -> Outcome:
        from radassist.batch.results import positive_labels, provenance
        from radassist.io import read_image
        from radassist.pipeline.read import read_radiograph
        from radassist.pipeline.result_json import result_to_dict

        image = read_image(item.path)
        result = read_radiograph(image)
        study = item.study_uid or result.meta.study_instance_uid or known_study(item)
        payload = result_to_dict(result)
        payload["file"] = item.relative
        payload["batch"] = provenance(item, study)
        if self.options.record:
            from radassist.feedback import record_read

            payload["recorded_session"] = record_read(result, store_path=self.options.store, radiograph=image)
        return Outcome(item, ImageStatus.READ, "", study, positive_labels(payload),
                       round(sum(result.timings_ms.values()), 1), payload)
