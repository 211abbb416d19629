"""The dark reading-room look: a dark palette (for widgets QSS does not reach) plus resources/theme/dark.qss.

Reading rooms are dim; a bright UI beside a radiograph lowers perceived contrast, which is why every
PACS is dark. Accent colours are kept for state (AI text, agreeing or not with the AI), never decoration.
"""

from __future__ import annotations

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

from radassist.paths import resources_dir
from radassist.vocabulary import Agreement

AI_TEXT_BACKGROUND = QColor(80, 58, 108)  # AI-written report text not yet touched by the radiologist
AGREEMENT_COLOURS = {  # a decision is coloured by how it relates to the AI's call, not by present/absent
    Agreement.AGREE: QColor(80, 170, 110),
    Agreement.DISAGREE: QColor(225, 120, 70),
    Agreement.UNCERTAIN: QColor(210, 170, 60),
    Agreement.READER_ONLY: QColor(90, 150, 220),
}
ANNOTATION_COLOUR = QColor(255, 214, 10)
REGION_COLOUR = QColor(0, 220, 255)


def theme_path():
    return resources_dir() / "theme" / "dark.qss"


def apply_dark_theme(app: QApplication) -> None:
    """Fusion style + dark palette + the QSS sheet (the sheet is optional: a missing file is not fatal)."""
    app.setStyle("Fusion")
    palette = QPalette()
    base, window, text = QColor(24, 24, 27), QColor(32, 33, 37), QColor(218, 220, 224)
    for role, colour in {
        QPalette.ColorRole.Window: window,
        QPalette.ColorRole.WindowText: text,
        QPalette.ColorRole.Base: base,
        QPalette.ColorRole.AlternateBase: QColor(38, 39, 44),
        QPalette.ColorRole.ToolTipBase: QColor(45, 46, 52),
        QPalette.ColorRole.ToolTipText: text,
        QPalette.ColorRole.Text: text,
        QPalette.ColorRole.Button: QColor(44, 45, 50),
        QPalette.ColorRole.ButtonText: text,
        QPalette.ColorRole.Highlight: QColor(58, 110, 165),
        QPalette.ColorRole.HighlightedText: QColor(255, 255, 255),
        QPalette.ColorRole.Link: QColor(110, 170, 230),
        QPalette.ColorRole.PlaceholderText: QColor(120, 122, 128),
    }.items():
        palette.setColor(role, colour)
    palette.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text, QColor(110, 110, 115))
    palette.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.ButtonText, QColor(110, 110, 115))
    app.setPalette(palette)
    path = theme_path()
    if path.is_file():
        app.setStyleSheet(path.read_text(encoding="utf-8"))
