"""RadAssist: a chest X-ray reading assistant that keeps the radiologist in charge.

The package is a one-way flow of plain data objects:
io -> imaging -> inference -> explain -> findings -> (gui | slicer host), with feedback closing the loop.
Importing the package is cheap on purpose: every heavy dependency is imported where it is used.
"""

__version__ = "0.1.0"
