"""Batch augmentation on preprocessed tensors (training only).

Only changes a radiograph plausibly undergoes between sites: small rotation, zoom and shift of the
patient in the field, and exposure/contrast (gamma). No horizontal flip: it would put the heart on the
wrong side and teach laterality-free maps. Zoom is >= 1 with reflected borders, so no padding band
appears that the model could learn from (the geometry shortcut of the pediatric set).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

MAX_ROTATION_DEGREES = 7.0
MAX_ZOOM = 1.15
MAX_SHIFT = 0.04  # fraction of the side
MAX_LOG_GAMMA = 0.3


def _standardize(x: torch.Tensor) -> torch.Tensor:
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    std = x.std(dim=(1, 2, 3), keepdim=True).clamp_min(1e-3)
    return (x - mean) / std


def augment_batch(x: torch.Tensor) -> torch.Tensor:
    """x: [B, 1, S, S] standardised tensors -> augmented, re-standardised tensors (uses torch's RNG)."""
    batch = x.shape[0]
    angle = (torch.rand(batch) * 2 - 1) * math.radians(MAX_ROTATION_DEGREES)
    zoom = 1.0 + torch.rand(batch) * (MAX_ZOOM - 1.0)
    shift = (torch.rand(batch, 2) * 2 - 1) * MAX_SHIFT * 2  # affine_grid coordinates span [-1, 1]
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    low = x.amin(dim=(1, 2, 3), keepdim=True)
    high = x.amax(dim=(1, 2, 3), keepdim=True)
    unit = ((x - low) / (high - low).clamp_min(1e-6)).clamp(0, 1)
    gamma = torch.exp((torch.rand(batch, 1, 1, 1) * 2 - 1) * MAX_LOG_GAMMA)
    return _standardize(unit.pow(gamma))
