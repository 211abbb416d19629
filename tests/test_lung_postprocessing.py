"""The mask operations behind the lung post-processing and the saliency lung envelope, on small synthetic
masks, and the reason they use SimpleITK: a read must not import scipy.ndimage (~0.4 s per process)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from radassist.explain.saliency import lung_envelope
from radassist.imaging.lungs import (
    BACKGROUND,
    LEFT_LUNG,
    RIGHT_LUNG,
    clean_lung_grid,
    connected_pieces,
    fill_holes,
    nearest_side,
)


def _probabilities(labels: np.ndarray) -> np.ndarray:
    probabilities = np.full((3,) + labels.shape, 0.02, dtype=np.float32)
    for label in (BACKGROUND, RIGHT_LUNG, LEFT_LUNG):
        probabilities[label][labels == label] = 0.96
    return probabilities


def test_pieces_touching_only_at_a_corner_are_two_pieces():
    mask = np.zeros((6, 6), dtype=bool)
    mask[0:2, 0:2] = True
    mask[2:5, 2:4] = True  # shares only the corner (1, 1)-(2, 2) with the first
    pieces, areas = connected_pieces(mask)
    assert sorted(areas.tolist()) == [4, 6]
    assert pieces[0, 0] != pieces[3, 3] and pieces[~mask].max() == 0
    assert connected_pieces(np.zeros((4, 4), dtype=bool))[1].size == 0


def test_a_hole_inside_a_lung_is_filled_but_a_notch_open_to_the_border_is_not():
    mask = np.zeros((12, 12), dtype=bool)
    mask[1:11, 1:8] = True
    hole = np.zeros_like(mask)
    hole[4:7, 3:5] = True
    mask &= ~hole
    mask[8, 0:6] = False  # notch reaching the grid border through the lung's edge
    filled = fill_holes(mask)
    assert np.array_equal(filled, mask | hole)


def test_a_hole_open_only_at_a_corner_is_still_a_hole():
    """Background connects through edges only (scipy's binary_fill_holes default, which this replaced)."""
    ring = np.zeros((7, 7), dtype=bool)
    ring[1:6, 1:6] = True
    ring[2:5, 2:5] = False
    ring[1, 1] = False  # the hole's corner (2, 2) touches outside background only diagonally
    assert fill_holes(ring)[2:5, 2:5].all()
    assert not fill_holes(ring)[1, 1]


def test_pieces_under_a_fifth_of_the_largest_or_under_the_minimum_area_are_dropped():
    grid = np.zeros((64, 64), dtype=np.uint8)
    grid[8:56, 4:28] = RIGHT_LUNG  # 1152 px
    grid[8:56, 36:60] = LEFT_LUNG
    grid[58:62, 4:20] = RIGHT_LUNG  # 64 px: above the 0.2 % minimum (8 px), below 20 % of the lung
    grid[2:4, 40:42] = LEFT_LUNG  # 4 px blob
    kept, warnings = clean_lung_grid(_probabilities(grid))
    assert warnings == []
    assert not kept[RIGHT_LUNG][58:62, 4:20].any() and not kept[LEFT_LUNG][2:4, 40:42].any()
    assert kept[RIGHT_LUNG].sum() == kept[LEFT_LUNG].sum() == 48 * 24


def test_each_cell_takes_the_side_of_its_nearest_lung_cell():
    sides = np.zeros((5, 11), dtype=np.uint8)
    sides[:, 0:3] = RIGHT_LUNG
    sides[:, 8:11] = LEFT_LUNG
    nearest = nearest_side(sides)
    assert nearest.dtype == np.uint8
    assert np.array_equal(nearest[:, 0:3], sides[:, 0:3]) and np.array_equal(nearest[:, 8:11], sides[:, 8:11])
    assert (nearest[:, 3:5] == RIGHT_LUNG).all()  # 1-2 px from the right lung, 4-5 from the left
    assert (nearest[:, 6:8] == LEFT_LUNG).all()
    assert (nearest[:, 5] == RIGHT_LUNG).all()  # equally near both: the right lung, deterministically
    sides[2, 4] = LEFT_LUNG  # a lone left cell nearer to column 5 than the right lung is
    assert nearest_side(sides)[2, 5] == LEFT_LUNG
    only_left = np.where(sides == LEFT_LUNG, LEFT_LUNG, BACKGROUND).astype(np.uint8)
    assert (nearest_side(only_left) == LEFT_LUNG).all()


def test_nearest_side_is_euclidean_along_diagonals():
    """The cell at (0, 0) is 3 px from the right lung and sqrt(8) px from the left: it is left."""
    sides = np.zeros((8, 8), dtype=np.uint8)
    sides[0, 3] = RIGHT_LUNG
    sides[2, 2] = LEFT_LUNG
    assert nearest_side(sides)[0, 0] == LEFT_LUNG


def test_lung_envelope_is_the_lungs_grown_by_a_disc():
    labels = np.zeros((100, 100), dtype=np.uint8)
    labels[50, 50] = LEFT_LUNG  # radius: 3 % of 100 px = 3 px
    envelope = lung_envelope(labels)
    rows, columns = np.nonzero(envelope)
    assert envelope.dtype == bool and envelope.sum() == 29  # the lattice points of a radius-3 disc
    assert ((rows - 50) ** 2 + (columns - 50) ** 2 <= 9).all()
    assert envelope[52, 52] and not envelope[53, 53]  # diagonal reach sqrt(8) px: beyond a diamond's
    labels[10:20, 10:30] = RIGHT_LUNG
    assert lung_envelope(labels)[labels > 0].all()
    assert not lung_envelope(np.zeros((30, 40), dtype=np.uint8)).any()


def test_a_read_does_not_import_scipy(repo_root):
    """scipy.ndimage costs ~0.4 s to import; the runtime read path must not pay it (training may). The
    bundle leaves scipy out on the strength of this (installer/pyinstaller/radassist.spec)."""
    code = (
        "import json, sys\n"
        "from radassist.pipeline.read import read_radiograph\n"
        "result = read_radiograph(sys.argv[1])\n"
        "print(json.dumps({'lungs': result.lung_mask is not None and bool(result.lung_mask.any()),\n"
        "                  'radiomics': bool(result.radiomics_table), 'report': result.report is not None,\n"
        "                  'scipy': 'scipy' in sys.modules}))\n"
    )
    sample = repo_root / "resources" / "samples" / "nih_cxr14_no_finding.dcm"
    out = subprocess.run([sys.executable, "-c", code, str(sample)], capture_output=True, text=True,
                         timeout=300, cwd=repo_root)
    assert out.returncode == 0, out.stderr
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert loaded == {"lungs": True, "radiomics": True, "report": True, "scipy": False}
