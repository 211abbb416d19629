"""The viewer shows "outside validated use" above the findings when QA says so (real model, real DICOM, offscreen
Qt): an infant's film is read, but never without the notice; an adult's film shows no notice."""

from __future__ import annotations

import pydicom
import pytest
from test_gui_read import NIH_DICOM, READ_TIMEOUT_MS


def _with_age(test_data, tmp_path, age: str):
    dataset = pydicom.dcmread(test_data / NIH_DICOM)
    dataset.PatientAge = age
    path = tmp_path / f"age_{age}.dcm"
    dataset.save_as(path)
    return path


@pytest.mark.parametrize("age, shown", [("004M", True), ("045Y", False)])
def test_outside_validated_use_notice_is_shown_above_the_findings(qtbot, make_window, test_data, tmp_path,  # noqa: F811
                                                                   age, shown):
    win = make_window()
    with qtbot.waitSignal(win.read_finished, timeout=READ_TIMEOUT_MS) as finished:
        win.open_paths([_with_age(test_data, tmp_path, age)])
    assert finished.args == [True], win.panel.status.text()
    notice = win.panel.domain_notice
    assert notice.isVisible() is shown
    assert win.panel.table.rowCount() > 0  # the findings are there either way
    if shown:
        assert "Outside validated use" in notice.text() and "0.3 years" in notice.text()
