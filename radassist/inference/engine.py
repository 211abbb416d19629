"""onnxruntime sessions: built once per model file, verified against the model card, reused.

Why a module of its own: every host (CLI, viewer, Slicer, batch workers) must get the same provider
choice, the same sha256 check and the same thread settings, and must never build a session twice.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from radassist.errors import ModelError
from radassist.inference.card import ModelCard

log = logging.getLogger(__name__)

# Most capable first. CPU is always last and always present.
PROVIDER_PREFERENCE: tuple[str, ...] = (
    "TensorrtExecutionProvider",
    "CUDAExecutionProvider",
    "DmlExecutionProvider",  # DirectML, Windows
    "CoreMLExecutionProvider",  # macOS
    "OpenVINOExecutionProvider",
    "CPUExecutionProvider",
)
PROVIDER_ALIASES = {
    "tensorrt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "directml": "DmlExecutionProvider",
    "dml": "DmlExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "cpu": "CPUExecutionProvider",
}
GPU_PROVIDERS = {"TensorrtExecutionProvider", "CUDAExecutionProvider"}


def nvidia_gpu_present() -> bool:
    """CUDA/TensorRT providers are listed by onnxruntime-gpu even without a GPU; check for a device."""
    return Path("/dev/nvidia0").exists() or Path("/proc/driver/nvidia/gpus").is_dir() or (
        os.name == "nt" and bool(os.environ.get("CUDA_PATH"))
    )


def choose_providers(available: list[str], override: str | None = None, gpu_present: bool | None = None
                     ) -> list[str]:
    """Providers to try, best first, always ending with CPU.

    `override` (config or RADASSIST_PROVIDER) names one provider (alias or full name); if it is not
    installed we fall back to the automatic choice rather than fail: the CPU always works.
    """
    if gpu_present is None:
        gpu_present = nvidia_gpu_present()
    usable = [p for p in PROVIDER_PREFERENCE if p in available and (p not in GPU_PROVIDERS or gpu_present)]
    if override:
        wanted = PROVIDER_ALIASES.get(override.lower(), override)
        if wanted in available:
            usable = [wanted] + [p for p in usable if p != wanted]
        else:
            log.warning("execution provider %s requested but not installed; choosing automatically", wanted)
    if "CPUExecutionProvider" not in usable:
        usable.append("CPUExecutionProvider")
    return usable


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class ModelSession:
    """A verified onnxruntime session and its card."""

    card: ModelCard
    session: Any  # onnxruntime.InferenceSession
    provider: str
    input_names: list[str] = field(default_factory=list)
    output_names: list[str] = field(default_factory=list)

    def run(self, inputs: dict[str, np.ndarray], outputs: list[str] | None = None) -> dict[str, np.ndarray]:
        names = outputs or self.output_names
        values = self.session.run(names, inputs)
        return dict(zip(names, values, strict=True))


_cache: dict[tuple[str, str, str | None], ModelSession] = {}
_cache_lock = threading.Lock()


def _thread_count() -> int:
    env = os.environ.get("RADASSIST_THREADS")
    if env and env.isdigit() and int(env) > 0:
        return int(env)
    return max(1, min(os.cpu_count() or 1, 4))


def card_path_for(model: str | Path) -> Path:
    """Accepts a card path, an ONNX path (card beside it as NAME.card.json) or a bare card name in models/."""
    path = Path(model)
    if path.suffix == ".json":
        return path
    if path.suffix == ".onnx":
        return path.with_suffix(".card.json")
    from radassist.inference.registry import active_card_path

    return active_card_path(str(model))


def load_model(model: str | Path, provider: str | None = None) -> ModelSession:
    """Build (once) and return the session for a model, after checking the file's sha256 against its card."""
    card_path = card_path_for(model)
    override = provider or os.environ.get("RADASSIST_PROVIDER")
    key = (str(card_path.resolve()), str(card_path.stat().st_mtime_ns if card_path.exists() else 0), override)
    with _cache_lock:
        if key in _cache:
            return _cache[key]
        card = ModelCard.load(card_path)
        onnx_path = card.onnx_path
        if not onnx_path.exists():
            raise ModelError(f"model file {onnx_path.name} is missing from {onnx_path.parent}")
        if not onnx_path.is_file():
            raise ModelError(f"model file {onnx_path} is not a regular file; refusing to load it")
        actual = sha256_of(onnx_path)
        if actual != card.sha256:
            raise ModelError(
                f"model file {onnx_path.name} does not match its model card (sha256 {actual[:12]}... "
                f"expected {card.sha256[:12]}...); refusing to load a model that is not the one validated"
            )
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = _thread_count()
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # errors only: a missing GPU is a fallback, not an error to shout
        providers = choose_providers(ort.get_available_providers(), override)
        try:
            session = ort.InferenceSession(str(onnx_path), sess_options=options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own exception types
            if providers == ["CPUExecutionProvider"]:
                raise ModelError(f"model file {onnx_path.name} cannot be loaded: {exc}") from None
            log.info("providers %s failed (%s); falling back to CPU", providers, exc)
            session = ort.InferenceSession(str(onnx_path), sess_options=options,
                                           providers=["CPUExecutionProvider"])
        model_session = ModelSession(
            card=card,
            session=session,
            provider=session.get_providers()[0],
            input_names=[i.name for i in session.get_inputs()],
            output_names=[o.name for o in session.get_outputs()],
        )
        _cache[key] = model_session
        return model_session
