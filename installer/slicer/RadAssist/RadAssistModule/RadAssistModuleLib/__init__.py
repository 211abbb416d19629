"""Helpers of the RadAssist Slicer module that need neither Slicer nor Qt (testable in plain Python)."""
