"""The one model preprocessing: geometry carries no label, square crops are invariant, MONOCHROME is handled."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from radassist.errors import InputRefused, ModelError
from radassist.image import ImageMetadata, Radiograph
from radassist.imaging.preprocess import centre_square_box, default_spec, preprocess
from radassist.io import read_image

SPEC = default_spec(128)
LANDSCAPE = "pediatric_pneumonia/images/person1007_bacteria_2938.png"  # wide pediatric film
PORTRAIT = "covid_hannover/images/fff13f3a.png"  # 474 x 512, taller than wide
MONOCHROME1_CR = "dicom/dcmfx_test_assets/fo-dicom/CR-MONO1-10-chest.dcm"
MONOCHROME2_DX = "dicom/nhsx_nccid_test_data/1.3.6.1.4.1.11129.5.5.110503645592756492463169821050252582267888.dcm"


def _radiograph(pixels: np.ndarray) -> Radiograph:
    meta = ImageMetadata(source_path="synthetic.png", file_format="PNG", rows=pixels.shape[0],
                         columns=pixels.shape[1])
    return Radiograph(pixels=pixels.astype(np.float32), meta=meta)


def test_landscape_portrait_and_padded_images_give_the_same_shape(shared_data):
    landscape = read_image(shared_data / LANDSCAPE)
    portrait = read_image(shared_data / PORTRAIT)
    assert landscape.shape[1] > landscape.shape[0] and portrait.shape[0] > portrait.shape[1]
    padded = dataclasses.replace(landscape, pixels=np.pad(landscape.pixels, ((200, 200), (0, 0))))
    for image in (landscape, portrait, padded):
        result = preprocess(image, SPEC)
        assert result.tensor.shape == (1, 128, 128) and result.tensor.dtype == np.float32
        assert abs(float(result.tensor.mean())) < 1e-4 and abs(float(result.tensor.std()) - 1) < 1e-3


def test_a_square_centre_crop_gives_the_same_tensor_as_the_original(shared_data):
    image = read_image(shared_data / LANDSCAPE)
    full = preprocess(image, SPEC)
    row0, col0, row1, col1 = full.crop_box
    assert (row1 - row0) == (col1 - col0) == min(image.shape)
    assert col0 == (image.shape[1] - image.shape[0]) // 2 and row0 == 0
    cropped = dataclasses.replace(image, pixels=image.pixels[row0:row1, col0:col1].copy())
    same = preprocess(cropped, SPEC)
    np.testing.assert_allclose(same.tensor, full.tensor, atol=1e-5)
    assert same.crop_box == (0, 0, row1 - row0, col1 - col0)


def test_the_width_of_an_image_does_not_reach_the_tensor():
    """Two images that differ only outside the centre square (the aspect) give identical tensors."""
    rng = np.random.default_rng(0)
    centre = rng.uniform(0, 255, (300, 300))
    narrow = _radiograph(np.pad(centre, ((0, 0), (10, 10)), constant_values=0))
    wide = _radiograph(np.pad(centre, ((0, 0), (150, 150)), constant_values=0))
    np.testing.assert_allclose(preprocess(narrow, SPEC).tensor, preprocess(wide, SPEC).tensor, atol=1e-5)


def test_centre_square_box_of_portrait_crops_rows():
    assert centre_square_box(512, 474) == (19, 0, 493, 474)
    assert centre_square_box(300, 300) == (0, 0, 300, 300)


@pytest.mark.parametrize("relative", [MONOCHROME1_CR, MONOCHROME2_DX])
def test_dense_mediastinum_is_bright_for_monochrome1_and_monochrome2(shared_data, relative):
    """Presentation space (bright = dense) reaches the model whatever the photometric interpretation."""
    image = read_image(shared_data / relative)
    tensor = preprocess(image, SPEC).tensor[0]
    s = tensor.shape[0]
    mediastinum = tensor[s // 4:3 * s // 4, int(s * .45):int(s * .55)].mean()
    lungs = np.r_[tensor[s // 4:3 * s // 4, int(s * .2):int(s * .35)].ravel(),
                  tensor[s // 4:3 * s // 4, int(s * .65):int(s * .8)].ravel()].mean()
    assert mediastinum > lungs + 1.0


def test_unknown_spec_and_tiny_images_are_refused():
    image = _radiograph(np.random.default_rng(1).uniform(0, 1, (64, 64)))
    with pytest.raises(ModelError):
        preprocess(image, {**SPEC, "crop": "pad_to_square"})
    with pytest.raises(InputRefused):
        preprocess(_radiograph(np.zeros((20, 400))), SPEC)
