"""Radiomics of the region the network itself finds salient (the follow-up of Han et al.: radiomics taken
from the class-activation region), recomputed from the model being trained.

The region of an image is where the CAM of the `abnormal` output, brought to the model's grid, reaches
SALIENT_FRACTION of its maximum. Features: first order + GLCM (the runtime evidence classes), on the model's
[0, 1] image. Extraction runs in worker processes; images without a usable region get NaN (imputed later).
"""

from __future__ import annotations

from multiprocessing import get_context

import numpy as np

from radassist.explain.radiomics import RUNTIME_FEATURE_CLASSES, extract_features
from radassist.imaging.resample import resize_plane

SALIENT_FRACTION = 0.5
PREFIX = "salient:"


def salient_mask(cam: np.ndarray, size: int) -> np.ndarray:
    """Boolean [size, size] region where the upsampled positive CAM is >= SALIENT_FRACTION of its maximum."""
    heat = resize_plane(np.maximum(cam.astype(np.float32), 0.0), size, size)
    peak = float(heat.max())
    return heat >= SALIENT_FRACTION * peak if peak > 0 else np.zeros((size, size), dtype=bool)


def _features(job: tuple[np.ndarray, np.ndarray]) -> dict[str, float]:
    tensor, cam = job
    plane = tensor.astype(np.float32)
    unit = (plane - plane.min()) / max(float(plane.max() - plane.min()), 1e-6)
    return extract_features(unit, salient_mask(cam, plane.shape[-1]), RUNTIME_FEATURE_CLASSES)


def salient_features(tensors: np.ndarray, cams: np.ndarray, workers: int = 2) -> tuple[np.ndarray, list[str]]:
    """[N, F] float64 features (NaN where a region was too small) and their names, for [N, 1, S, S] tensors
    and [N, h, w] CAMs of one output."""
    jobs = [(tensors[i, 0], cams[i]) for i in range(len(tensors))]
    if workers > 1:
        with get_context("spawn").Pool(workers) as pool:
            tables = pool.map(_features, jobs, chunksize=32)
    else:
        tables = [_features(job) for job in jobs]
    names = sorted(set().union(*tables))
    values = np.array([[table.get(n, np.nan) for n in names] for table in tables], dtype=np.float64)
    return values, [PREFIX + n for n in names]
