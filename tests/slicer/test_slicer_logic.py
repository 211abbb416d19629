"""RadAssistModuleLogic on a REAL MRML scene (PyPI slicer-core): volumes, colour tables, slice layers.

Only the Slicer application's modules (qt, ctk, slicer.ScriptedLoadableModule) are stand-ins (conftest.py);
every node, scene and slicer.util call here is the real one.
"""

from __future__ import annotations

import numpy as np
import pytest

from radassist.errors import InputRefused
from radassist.image import ImageMetadata, Radiograph
from radassist.io import read_image
from radassist.results import DraftReport, Finding, QAVerdict, ReadResult, ReportSentence

CR_WITH_SPACING = "dicom/dcmfx_test_assets/fo-dicom/CR-ModalitySequenceLUT.dcm"  # real CR, 0.15 mm, 1576x1976


def _radiograph(rows=40, columns=30, spacing=(0.15, 0.2)) -> Radiograph:
    pixels = (np.arange(rows * columns, dtype=np.float32).reshape(rows, columns) * 0.5) - 100.0
    meta = ImageMetadata(source_path="/nowhere/synthetic.png", file_format="PNG", rows=rows, columns=columns,
                         pixel_spacing_mm=spacing)
    return Radiograph(pixels=pixels, meta=meta)


def _read_result(radiograph: Radiograph, saliency_shape=None) -> ReadResult:
    """A ReadResult as the core's pipeline fills it: two findings with maps, a lung mask, a report."""
    rows, columns = saliency_shape or radiograph.shape
    rising = np.linspace(0.0, 1.0, rows * columns, dtype=np.float32).reshape(rows, columns)
    lungs = np.zeros(radiograph.shape, dtype=np.uint8)
    lungs[5:35, 3:14] = 1  # patient's right lung: image left
    lungs[5:35, 16:27] = 2
    report = DraftReport([
        ReportSentence("FINDINGS", "Patchy opacity in the right lower zone.", None, "opacity", 0.8, "likely", "s0"),
        ReportSentence("IMPRESSION", "Findings may represent pneumonia.", None, "pneumonia", 0.7, "possible", "s1"),
    ])
    return ReadResult(
        meta=radiograph.meta, qa=QAVerdict(True, "frontal chest radiograph"), model_id="test-model",
        findings=[
            Finding("opacity", "Lung opacity", 0.8, 0.5, True, zone="right lower zone"),
            Finding("pneumonia", "Pneumonia", 0.7, 0.5, True),
        ],
        saliency={"opacity": rising, "pneumonia": rising[::-1].copy()},
        lung_mask=lungs, report=report,
    )


def _composites(scene):
    return [scene.GetNthNodeByClass(i, "vtkMRMLSliceCompositeNode")
            for i in range(scene.GetNumberOfNodesByClass("vtkMRMLSliceCompositeNode"))]


def test_radiograph_becomes_single_slice_scalar_volume_with_spacing(radassist_module, scene, slicer_core):
    radiograph = _radiograph()
    logic = radassist_module.RadAssistModuleLogic()
    node = logic.showRadiograph(radiograph)

    assert node.GetClassName() == "vtkMRMLScalarVolumeNode"
    assert scene.IsNodePresent(node)
    assert node.GetImageData().GetDimensions() == (30, 40, 1)  # (columns, rows, 1 slice)
    assert node.GetSpacing() == pytest.approx((0.2, 0.15, 1.0))  # column spacing first, as VTK's i axis
    voxels = slicer_core.util.arrayFromVolume(node)
    assert voxels.shape == (1, 40, 30)
    np.testing.assert_array_equal(voxels[0], radiograph.pixels)
    window = radiograph.default_window()
    display = node.GetDisplayNode()
    assert (display.GetWindow(), display.GetLevel()) == pytest.approx((window.width, window.center))
    assert not display.GetAutoWindowLevel()
    # LPS directions (as Slicer's own 2D reader): columns run to patient-left, rows to posterior.
    directions = np.zeros((3, 3))
    node.GetIJKToRASDirections(directions)
    np.testing.assert_array_equal(directions, np.diag([-1.0, -1.0, 1.0]))


def test_real_dicom_file_is_read_through_the_core(radassist_module, scene, slicer_core, test_data):
    path = test_data / CR_WITH_SPACING
    expected = read_image(path)
    logic = radassist_module.RadAssistModuleLogic()
    node = logic.loadRadiograph(str(path))

    rows, columns = expected.shape
    assert node.GetImageData().GetDimensions() == (columns, rows, 1)
    assert node.GetSpacing() == pytest.approx((0.15, 0.15, 1.0))
    np.testing.assert_array_equal(slicer_core.util.arrayFromVolume(node)[0], expected.pixels)
    assert node.GetName() == path.name  # the file name, never patient fields


def test_unreadable_file_is_refused_and_scene_left_alone(radassist_module, scene, tmp_path):
    bogus = tmp_path / "notes.txt"
    bogus.write_text("not an image")
    logic = radassist_module.RadAssistModuleLogic()
    with pytest.raises(InputRefused):
        logic.loadRadiograph(str(bogus))
    assert scene.GetNumberOfNodesByClass("vtkMRMLVolumeNode") == 0
    assert logic.radiographNode is None


def test_read_result_shows_saliency_foreground_and_lung_label_map(radassist_module, scene, slicer_core):
    radiograph = _radiograph()
    logic = radassist_module.RadAssistModuleLogic()
    logic.showRadiograph(radiograph)
    result = _read_result(radiograph)
    logic.showReadResult(result)

    saliency = logic.saliencyNode
    assert saliency.GetClassName() == "vtkMRMLScalarVolumeNode"
    np.testing.assert_allclose(slicer_core.util.arrayFromVolume(saliency)[0], result.saliency["opacity"])
    assert logic.saliencyLabel == "opacity"
    colors = saliency.GetDisplayNode().GetColorNode()
    assert colors.GetName() == radassist_module.SALIENCY_COLOR_NODE_NAME
    assert colors.GetNumberOfColors() == 256
    low, high = [0.0] * 4, [0.0] * 4
    colors.GetColor(0, low)
    colors.GetColor(255, high)
    assert low[3] == 0.0 and high[3] == 1.0  # transparent where the model did not look
    assert (saliency.GetDisplayNode().GetWindow(), saliency.GetDisplayNode().GetLevel()) == pytest.approx((1.0, 0.5))

    lungs = logic.lungMaskNode
    assert lungs.GetClassName() == "vtkMRMLLabelMapVolumeNode"
    np.testing.assert_array_equal(slicer_core.util.arrayFromVolume(lungs)[0], result.lung_mask)
    lung_colors = lungs.GetDisplayNode().GetColorNode()
    assert [lung_colors.GetColorName(v) for v in (1, 2)] == ["right lung", "left lung"]

    for composite in _composites(scene):
        assert composite.GetBackgroundVolumeID() == logic.radiographNode.GetID()
        assert composite.GetForegroundVolumeID() == saliency.GetID()
        assert composite.GetLabelVolumeID() == lungs.GetID()
        assert composite.GetForegroundOpacity() == pytest.approx(radassist_module.DEFAULT_OVERLAY_OPACITY)


def test_choosing_another_finding_reuses_the_overlay_and_opacity_follows(radassist_module, scene, slicer_core):
    radiograph = _radiograph()
    logic = radassist_module.RadAssistModuleLogic()
    logic.showRadiograph(radiograph)
    result = _read_result(radiograph)
    logic.showReadResult(result)
    overlay = logic.saliencyNode

    assert logic.showSaliency("pneumonia", opacity=0.75) is overlay
    np.testing.assert_allclose(slicer_core.util.arrayFromVolume(overlay)[0], result.saliency["pneumonia"])
    assert "pneumonia" in overlay.GetName()
    volumes = [scene.GetNthNodeByClass(i, "vtkMRMLVolumeNode").GetClassName()
               for i in range(scene.GetNumberOfNodesByClass("vtkMRMLVolumeNode"))]
    assert sorted(volumes) == ["vtkMRMLLabelMapVolumeNode"] + ["vtkMRMLScalarVolumeNode"] * 2  # + ONE overlay
    assert scene.GetNumberOfNodesByClass("vtkMRMLColorTableNode") == 2  # saliency + lungs, created once
    assert all(c.GetForegroundOpacity() == pytest.approx(0.75) for c in _composites(scene))
    logic.setOverlayOpacity(0.1)
    assert all(c.GetForegroundOpacity() == pytest.approx(0.1) for c in _composites(scene))
    with pytest.raises(KeyError):
        logic.showSaliency("pneumothorax")


def test_coarse_saliency_map_covers_the_same_physical_extent(radassist_module, scene):
    radiograph = _radiograph(rows=40, columns=30, spacing=(0.15, 0.2))
    logic = radassist_module.RadAssistModuleLogic()
    logic.showRadiograph(radiograph)
    logic.showReadResult(_read_result(radiograph, saliency_shape=(8, 6)))  # e.g. a raw 8x6 CAM

    image_bounds, overlay_bounds = [0.0] * 6, [0.0] * 6
    logic.radiographNode.GetRASBounds(image_bounds)
    logic.saliencyNode.GetRASBounds(overlay_bounds)
    assert overlay_bounds[:4] == pytest.approx(image_bounds[:4])  # same in-plane rectangle
    assert logic.saliencyNode.GetSpacing()[:2] == pytest.approx((0.2 * 30 / 6, 0.15 * 40 / 8))


def test_new_radiograph_clears_the_previous_overlays(radassist_module, scene):
    radiograph = _radiograph()
    logic = radassist_module.RadAssistModuleLogic()
    logic.showRadiograph(radiograph)
    logic.showReadResult(_read_result(radiograph))
    logic.showRadiograph(_radiograph(rows=20, columns=20))

    assert logic.readResult is None and logic.saliencyNode is None and logic.lungMaskNode is None
    assert scene.GetNumberOfNodesByClass("vtkMRMLLabelMapVolumeNode") == 0


def test_real_read_of_a_bundled_sample_is_shown_in_the_scene(radassist_module, scene, slicer_core, repo_root):
    """End to end on the core: read_image -> read_radiograph (real ONNX models) -> MRML nodes."""
    logic = radassist_module.RadAssistModuleLogic()
    logic.loadRadiograph(str(repo_root / "resources" / "samples" / "adult_covid19_hannover.png"))
    result = logic.runRead()

    assert result.qa.accepted, result.qa.reason
    assert result.findings and logic.readResult is result
    first = next(f.label for f in result.findings if f.label in result.saliency)
    assert logic.saliencyLabel == first
    np.testing.assert_allclose(slicer_core.util.arrayFromVolume(logic.saliencyNode)[0],
                               np.clip(result.saliency[first], 0.0, 1.0))
    lungs = slicer_core.util.arrayFromVolume(logic.lungMaskNode)[0]
    np.testing.assert_array_equal(lungs, result.lung_mask)
    assert set(np.unique(lungs)) == {0, 1, 2}
    # Patient's right lung (1) lies on the image's left in a PA display.
    columns = np.nonzero(lungs)[1]
    assert columns[lungs[lungs > 0] == 1].mean() < columns[lungs[lungs > 0] == 2].mean()
    for composite in _composites(scene):
        assert composite.GetForegroundVolumeID() == logic.saliencyNode.GetID()
        assert composite.GetLabelVolumeID() == logic.lungMaskNode.GetID()


def test_real_read_refusal_is_returned_for_the_panel_and_adds_no_overlay(radassist_module, scene, test_data):
    """A CT slice through the core's real QA: the verdict comes back (not raised) with its reason."""
    logic = radassist_module.RadAssistModuleLogic()
    logic.loadRadiograph(str(test_data / "dicom/dcmfx_test_assets/fo-dicom/D_CLUNIE_CT1_RLE_FRAGS.dcm"))
    result = logic.runRead()

    assert not result.qa.accepted
    assert "CT" in result.qa.reason
    assert logic.saliencyNode is None and logic.lungMaskNode is None
    assert scene.GetNumberOfNodesByClass("vtkMRMLVolumeNode") == 1
    for composite in _composites(scene):
        assert composite.GetBackgroundVolumeID() == logic.radiographNode.GetID()
        assert composite.GetForegroundVolumeID() is None
