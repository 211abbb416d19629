"""The viewer's fast display path (radassist.imaging.display) against the reference windowing, on a real DICOM.

Qt-free: these check the numbers the panes paint, not the widgets (tests/test_gui_viewer.py does that).
"""

from __future__ import annotations

import numpy as np
import pytest

from radassist.imaging.display import (
    CodedImage,
    ViewGeometry,
    apply_lut,
    colormap_argb,
    saliency_bytes,
    window_lut,
)
from radassist.imaging.windowing import apply_window
from radassist.io import read_image

NIH_DICOM = "dicom/nhsx_nccid_test_data/1.3.6.1.4.1.11129.5.5.110503645592756492463169821050252582267888.dcm"
CR_MONO1 = "dicom/dcmfx_test_assets/fo-dicom/CR-MONO1-10-chest.dcm"


@pytest.fixture(scope="module")
def cr_pixels(test_data):
    """A real 10-bit MONOCHROME1 chest CR in presentation values (inverted by the reader)."""
    return read_image(test_data / CR_MONO1).pixels


def test_integer_images_are_coded_without_loss(cr_pixels):
    coded = CodedImage(cr_pixels)
    assert coded.step == 1.0
    np.testing.assert_array_equal(coded.values(coded.levels[0]), cr_pixels)


def test_non_integer_values_are_spread_over_all_codes():
    rng = np.random.default_rng(1)
    pixels = rng.normal(0.0, 1.0, (300, 200)).astype(np.float32)
    coded = CodedImage(pixels)
    assert coded.step < 1e-3
    assert np.max(np.abs(coded.values(coded.levels[0]) - pixels)) <= coded.step / 2 + 1e-6


@pytest.mark.parametrize("center, width, invert", [(550.0, 1024.0, False), (300.0, 80.0, False), (700.0, 400.0, True)])
def test_lookup_table_matches_reference_windowing(cr_pixels, center, width, invert):
    """What the pane shows equals apply_window (the model's and the CLI's mapping) to one display level."""
    coded = CodedImage(cr_pixels)
    shown = apply_lut(window_lut(coded, center, width, invert), coded.levels[0].astype(np.intp))
    reference = np.rint(apply_window(cr_pixels, center, width) * 255.0)
    if invert:
        reference = 255.0 - reference
    assert np.max(np.abs(shown.astype(np.int32) - reference.astype(np.int32))) <= 1


def test_pyramid_levels_are_two_by_two_means(test_data):
    pixels = read_image(test_data / NIH_DICOM).pixels  # 1024 x 1024
    coded = CodedImage(pixels)
    assert coded.level_factors == [1, 2, 4]
    expected = pixels.reshape(512, 2, 512, 2).mean(axis=(1, 3))
    assert np.max(np.abs(coded.values(coded.levels[1]) - expected)) <= 0.5 + 1e-6


def test_one_to_one_view_samples_the_image_pixels_themselves(cr_pixels):
    coded = CodedImage(cr_pixels)
    geometry = ViewGeometry(width=100, height=80, scale=1.0, origin_x=50.0, origin_y=20.0)
    codes, rect = geometry.sample(coded)
    assert rect == (0, 0, 100, 80)
    np.testing.assert_array_equal(coded.values(codes), cr_pixels[20:100, 50:150])


def test_zoomed_out_view_uses_a_coarser_level_and_covers_only_the_image(test_data):
    pixels = read_image(test_data / NIH_DICOM).pixels
    coded = CodedImage(pixels)
    # 1024 px image shown 400 px wide, centred in a 600 x 400 pane: 100 px of black on either side.
    scale = 400 / 1024
    geometry = ViewGeometry(width=600, height=400, scale=scale, origin_x=-100 / scale, origin_y=0.0)
    level, rows, cols, rect = geometry.sample_indices(coded.shape, coded.level_factors)
    assert level == 1  # 2x2 means: one level pixel per 0.78 screen pixels, never fewer than one
    assert rect == (100, 0, 400, 400)
    assert cols.min() == 0 and cols.max() == 511


def test_preview_codes_map_to_full_resolution_coordinates(cr_pixels):
    """A 1/4 preview and the full image put the same anatomy under the same screen pixel."""
    full = CodedImage(cr_pixels)
    preview = CodedImage(cr_pixels[::4, ::4].copy(), full_shape=full.shape, base_factor=4)
    geometry = ViewGeometry(width=110, height=110, scale=0.25, origin_x=0.0, origin_y=0.0)
    preview_codes, preview_rect = geometry.sample(preview)
    assert preview_rect == geometry.covered_rect(full.shape)
    np.testing.assert_array_equal(preview.values(preview_codes), cr_pixels[::4, ::4][:110, :110])


def test_overlay_colormap_is_transparent_below_the_threshold():
    words = colormap_argb("jet", threshold=0.3)
    alpha = words >> 24
    assert np.all(alpha[: int(0.3 * 255)] == 0)
    assert alpha[255] == 255 and np.all(np.diff(alpha[77:].astype(np.int64)) >= 0)
    red = (words >> 16) & 0xFF
    assert np.all(red <= alpha)  # premultiplied: no channel exceeds alpha
    np.testing.assert_array_equal(saliency_bytes(np.array([-1.0, 0.0, 0.5, 2.0])), [0, 0, 128, 255])
