"""Training samples for the chest check: is this an upright, non-inverted frontal chest radiograph?

Classes (softmax, in this order): upright chest, rotated 90 / 180 / 270 degrees (counter-clockwise), mirrored
left-right, grey-inverted, not a chest radiograph. The first six are made from every frontal chest film of the
data folders by exactly those pixel operations on the image as read (before the model's crop), so a rotated
landscape film shows the crop a rotated film really gives. "Not a chest radiograph" comes from:
- tight crops of chest films (10-35 % of the area: a shoulder, the spine, the upper abdomen);
- other body parts and modalities: pydicom's bundled test images (CT, MR, US, ...), which ship with pydicom;
- procedural radiographs of limbs and pelvis (bright long bones with a cortex, a soft-tissue envelope,
  a pelvic ring with femoral heads), because no public limb radiographs are on this machine.
The non-chest DICOMs in ../shared/data/dicom (dental CR, abdominal scout, mammogram, NM, XA, CT, MR) are kept
OUT of training: they are the unseen non-chest probes the card reports.
"""

from __future__ import annotations

from enum import IntEnum
from pathlib import Path

import numpy as np

from radassist.image import Radiograph
from radassist.imaging.preprocess import PreprocessedImage, preprocess


class ChestCheckClass(IntEnum):
    UPRIGHT = 0
    ROTATED_90 = 1
    ROTATED_180 = 2
    ROTATED_270 = 3
    MIRRORED = 4
    INVERTED = 5
    NOT_CHEST = 6


def transformed(pixels: np.ndarray, kind: ChestCheckClass) -> np.ndarray:
    """The image as a film handled that way would be read (NOT_CHEST is not a transform)."""
    if kind in (ChestCheckClass.ROTATED_90, ChestCheckClass.ROTATED_180, ChestCheckClass.ROTATED_270):
        return np.ascontiguousarray(np.rot90(pixels, int(kind)))
    if kind == ChestCheckClass.MIRRORED:
        return np.ascontiguousarray(pixels[:, ::-1])
    if kind == ChestCheckClass.INVERTED:
        return (float(pixels.max()) + float(pixels.min()) - pixels).astype(pixels.dtype)
    return pixels


def with_pixels(image: Radiograph, pixels: np.ndarray) -> Radiograph:
    """A copy of `image` with other pixels and no DICOM window (the window belonged to the original pixels)."""
    import dataclasses

    meta = dataclasses.replace(image.meta, rows=pixels.shape[0], columns=pixels.shape[1], window_presets=[])
    return dataclasses.replace(image, pixels=pixels.astype(np.float32), meta=meta)


def random_crop(pixels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A tight crop covering 10-35 % of the image (partial anatomy, not a chest film)."""
    rows, columns = pixels.shape
    area = rng.uniform(0.10, 0.35)
    aspect = rng.uniform(0.6, 1.6)
    height = int(min(rows, max(48, np.sqrt(area * rows * columns * aspect))))
    width = int(min(columns, max(48, area * rows * columns / height)))
    top = int(rng.integers(0, rows - height + 1))
    left = int(rng.integers(0, columns - width + 1))
    return pixels[top:top + height, left:left + width]


def _blur(image: np.ndarray, sigma: float) -> np.ndarray:
    import SimpleITK as sitk

    return sitk.GetArrayFromImage(sitk.SmoothingRecursiveGaussian(sitk.GetImageFromArray(image), sigma))


def _bar(shape: tuple[int, int], centre: tuple[float, float], angle: float, length: float,
         width: float) -> np.ndarray:
    """Signed distance-like profile of a bar: 1 on its axis falling to 0 at its edge (negative outside)."""
    rows, columns = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float32)
    dy, dx = rows - centre[0], columns - centre[1]
    along = dx * np.cos(angle) + dy * np.sin(angle)
    across = -dx * np.sin(angle) + dy * np.cos(angle)
    flare = 1.0 + 0.6 * np.clip(np.abs(along) / (length / 2) - 0.7, 0, None) / 0.3  # wider bone ends
    profile = 1.0 - np.abs(across) / (width / 2 * flare)
    return np.where(np.abs(along) <= length / 2, profile, -1.0)


def synthetic_bone_radiograph(rng: np.random.Generator, size: int = 256) -> np.ndarray:
    """A procedural non-chest radiograph in [0, 1]: a limb (one or two long bones) or a pelvis."""
    shape = (size, size)
    image = np.full(shape, rng.uniform(0.02, 0.15), dtype=np.float32)
    rows, columns = np.mgrid[0:size, 0:size].astype(np.float32)
    bone = np.zeros(shape, dtype=np.float32)
    kind = rng.integers(0, 3)
    if kind < 2:  # limb: soft tissue envelope around one or two long bones
        angle = np.pi / 2 + rng.normal(0, 0.25)
        centre = (size / 2 + rng.normal(0, size * 0.05), size / 2 + rng.normal(0, size * 0.08))
        envelope = _bar(shape, centre, angle, size * 1.6, size * rng.uniform(0.35, 0.7))
        image += np.clip(envelope, 0, 1) ** 0.3 * rng.uniform(0.2, 0.35)
        offsets = [0.0] if kind == 0 else [-size * 0.07, size * 0.08]
        for k, offset in enumerate(offsets):
            width = size * rng.uniform(0.08, 0.16) * (0.5 if k == 1 else 1.0)
            c = (centre[0] + offset * np.cos(angle), centre[1] - offset * np.sin(angle))
            bone = np.maximum(bone, _bar(shape, c, angle, size * rng.uniform(0.7, 1.3), width))
    else:  # pelvis: iliac ring, two femoral heads, the femoral shafts
        cy, cx = size * rng.uniform(0.35, 0.5), size / 2
        radius = ((rows - cy) / 0.7) ** 2 + (columns - cx) ** 2
        ring = 1.0 - np.abs(np.sqrt(radius) - size * 0.3) / (size * 0.06)
        bone = np.maximum(bone, ring)
        image += 0.25 * (np.sqrt(radius) < size * 0.45)
        for side in (-1, 1):
            head = 1.0 - np.sqrt((rows - cy - size * 0.22) ** 2 + (columns - cx - side * size * 0.27) ** 2) / (size * 0.07)
            bone = np.maximum(bone, head)
            bone = np.maximum(bone, _bar(shape, (cy + size * 0.55, cx + side * size * 0.3), np.pi / 2 + side * 0.15,
                                         size * 0.6, size * 0.1))
    inside = bone > 0
    cortex = np.clip(1.0 - bone / 0.35, 0, 1)  # brighter rim near the edge of the bone
    image = np.where(inside, rng.uniform(0.55, 0.7) + 0.25 * cortex, image)
    image = _blur(image.astype(np.float32), rng.uniform(0.8, 2.0))
    image += rng.normal(0, rng.uniform(0.005, 0.03), shape).astype(np.float32)
    return np.clip(image, 0, 1)


def pydicom_non_chest_images() -> list[np.ndarray]:
    """2D planes of pydicom's bundled test images (CT, MR, US, ...): other modalities and body parts."""
    import pydicom

    root = Path(pydicom.__file__).parent / "data" / "test_files"
    planes = []
    for path in sorted(root.rglob("*.dcm")):
        try:
            dataset = pydicom.dcmread(path)
            pixels = dataset.pixel_array.astype(np.float32)
        except Exception:  # noqa: BLE001  (many test files are deliberately broken or have no pixels)
            continue
        if pixels.ndim == 4 or (pixels.ndim == 3 and pixels.shape[-1] in (3, 4)):
            pixels = pixels[0] if pixels.ndim == 4 else pixels
            pixels = pixels.mean(axis=-1) if pixels.ndim == 3 else pixels
        if pixels.ndim == 3:
            pixels = pixels[len(pixels) // 2]
        if pixels.ndim == 2 and min(pixels.shape) >= 32 and float(pixels.max()) > float(pixels.min()):
            planes.append(pixels)
    return planes


def sample_tensor(image: Radiograph, spec: dict) -> np.ndarray:
    pre: PreprocessedImage = preprocess(image, spec)
    return pre.tensor.astype(np.float16)
