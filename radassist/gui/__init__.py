"""The standalone desktop viewer (PySide6). The only package of RadAssist that may import Qt.

The widgets are thin: images come from radassist.io, the AI read from radassist.pipeline, the display
mapping from radassist.imaging.display, and the reading (decisions, regions, report, undo, signature)
is a radassist.feedback.reading.Reading: the widgets call it and draw its state, so the feedback
store holds exactly what the radiologist did and the screen shows exactly what the store holds.
"""
