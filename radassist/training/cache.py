"""Preprocessed tensors and radiomics, computed once per image and kept on disk (never in the repo).

Why: reading, cropping and the pyradiomics extraction cost more than an epoch of training on this
machine; every epoch, the ablation and the re-runs reuse the same arrays. One small .npz per image,
named by a hash of the file (path, size, mtime) and the settings, so a changed image or spec is
recomputed and nothing stale is reused.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from tqdm import tqdm

from radassist.training.datasets import ImageRecord

CACHE_VERSION = 2  # 2: radiomics per lung field


def default_cache_dir() -> Path:
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("radassist", appauthor=False)) / "training"


@dataclass
class CachedImages:
    """Everything training needs from the pixels, one row per record."""

    tensors: np.ndarray  # float16 [N, 1, S, S]
    radiomics: np.ndarray  # float64 [N, F] (NaN where pyradiomics gave no value)
    feature_names: list[str]
    shapes: np.ndarray  # int [N, 2] rows, columns of the image as read


def _entry_name(record: ImageRecord, spec: dict, region: str, region_model: str) -> str:
    stat = record.path.stat()
    identity = json.dumps([CACHE_VERSION, str(record.path.resolve()), stat.st_size, stat.st_mtime_ns,
                           spec, region, region_model], sort_keys=True)
    return hashlib.sha256(identity.encode()).hexdigest()[:32] + ".npz"


def _compute(job: tuple[Path, Path, dict, str]) -> None:
    from radassist.imaging.preprocess import preprocess
    from radassist.io import read_image
    from radassist.training.radiomics_features import radiomics_vector

    image_path, entry_path, spec, region = job
    image = read_image(image_path)
    pre = preprocess(image, spec)
    features, names = radiomics_vector(image, pre, region)
    tmp = entry_path.with_suffix(".tmp.npz")
    np.savez(tmp, tensor=pre.tensor.astype(np.float16), radiomics=features, names=np.array(names),
             shape=np.array(image.shape))
    tmp.replace(entry_path)


def load_or_build(records: list[ImageRecord], spec: dict, region: str, cache_dir: Path,
                  workers: int = 2, region_model: str = "") -> CachedImages:
    """Arrays for `records`, computing (in `workers` processes) only the entries not cached yet. `region_model`
    (the lung model's sha256) is part of each entry's key, so a new lung model never reuses old radiomics."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    entries = [cache_dir / _entry_name(r, spec, region, region_model) for r in records]
    jobs = [(r.path, e, spec, region) for r, e in zip(records, entries, strict=True) if not e.exists()]
    if jobs:
        if workers > 1:
            with get_context("spawn").Pool(workers) as pool:
                for _ in tqdm(pool.imap_unordered(_compute, jobs, chunksize=4), total=len(jobs),
                              desc="preprocess + radiomics", unit="img"):
                    pass
        else:
            for job in tqdm(jobs, desc="preprocess + radiomics", unit="img"):
                _compute(job)
    tensors, tables, shapes = [], [], []
    for entry in entries:
        with np.load(entry) as data:
            tables.append(dict(zip((str(n) for n in data["names"]), data["radiomics"], strict=True)))
            tensors.append(data["tensor"])
            shapes.append(data["shape"])
    names = sorted(set().union(*tables))  # an image whose lung region was too small lacks some features
    radiomics = np.array([[table.get(n, np.nan) for n in names] for table in tables], dtype=np.float64)
    return CachedImages(np.stack(tensors), radiomics, names, np.stack(shapes))
