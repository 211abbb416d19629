"""SaliencyMaps: maps computed at a working resolution, brought to image size on request."""

from __future__ import annotations

import numpy as np
import pytest

from radassist.explain.saliency import WORKING_SIDE, SaliencyMaps, normalised_saliency, to_image_space


def _blob(shape: tuple[int, int], centre: tuple[float, float], sigma: float) -> np.ndarray:
    rows, columns = np.mgrid[0:shape[0], 0:shape[1]]
    return np.exp(-(((rows - centre[0]) ** 2 + (columns - centre[1]) ** 2) / (2 * sigma ** 2))).astype(np.float32)


def test_small_images_are_kept_at_their_own_size() -> None:
    maps = SaliencyMaps((440, 300))
    assert maps.stride == 1 and maps.working_shape == (440, 300)
    values = _blob((440, 300), (100, 200), 20)
    maps.add("finding", values)
    assert maps["finding"] is values  # nothing resampled
    assert maps.peak("finding") == (100, 200)


def test_large_image_map_comes_back_at_image_size_with_its_peak() -> None:
    shape = (2500, 3000)
    maps = SaliencyMaps(shape)
    assert maps.stride == int(np.ceil(3000 / WORKING_SIDE))
    assert max(maps.working_shape) <= WORKING_SIDE
    centre = (1800.0, 700.0)
    working_centre = (centre[0] / maps.stride, centre[1] / maps.stride)
    maps.add("opacity", _blob(maps.working_shape, working_centre, 12))
    assert list(maps) == ["opacity"] and len(maps) == 1
    assert "opacity" in maps and "other" not in maps and maps._full == {}  # asking does not resample
    full = maps["opacity"]
    assert full.shape == shape and full.dtype == np.float32
    assert 0.0 <= float(full.min()) and float(full.max()) <= 1.0 + 1e-6
    full_peak = np.unravel_index(int(np.argmax(full)), shape)
    assert maps.peak("opacity") is not None
    assert np.abs(np.subtract(maps.peak("opacity"), full_peak)).max() <= maps.stride
    assert np.abs(np.subtract(full_peak, centre)).max() <= maps.stride
    assert maps["opacity"] is full  # resampled once, then kept
    assert maps.at_shape("opacity", (128, 154)).shape == (128, 154)


def test_empty_map_has_no_peak_and_wrong_shapes_are_refused() -> None:
    maps = SaliencyMaps((1000, 1000))
    maps.add("none", np.zeros(maps.working_shape, dtype=np.float32))
    assert maps.peak("none") is None
    with pytest.raises(ValueError, match="working shape"):
        maps.add("bad", np.zeros((10, 10), dtype=np.float32))


def test_working_box_covers_the_same_part_of_the_image() -> None:
    maps = SaliencyMaps((3000, 2400))
    box = maps.working_box((300, 0, 2700, 2400))
    assert box == (50, 0, 450, 400)
    cam = np.ones((5, 5), dtype=np.float32)
    working = normalised_saliency(to_image_space(cam, box, maps.working_shape), None)
    maps.add("finding", working)
    full = maps["finding"]
    assert full[:250].max() == 0.0 and full[2750:].max() == 0.0  # outside the crop stays empty
    assert full[400:2600].min() == pytest.approx(1.0)


def test_display_bytes_match_the_quantised_float_map_within_a_grey_level() -> None:
    maps = SaliencyMaps((3000, 2800))
    maps.add("opacity", _blob(maps.working_shape, (200.0, 150.0), 40))
    display = maps.as_uint8("opacity")
    assert display.shape == (3000, 2800) and display.dtype == np.uint8
    reference = np.rint(np.clip(maps["opacity"], 0.0, 1.0) * 255.0).astype(np.int16)
    assert np.abs(display.astype(np.int16) - reference).max() <= 1
    assert display.max() >= 254
