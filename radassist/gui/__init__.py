"""The standalone desktop viewer (PySide6). The only package of RadAssist that may import Qt.

The widgets are thin: images come from radassist.io, the AI read from radassist.pipeline, the display
mapping from radassist.imaging.display, and every radiologist action leaves through one `EventSink`
(radassist.gui.events) so the feedback store sees exactly what the radiologist did.
"""
