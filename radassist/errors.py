"""Errors a user can act on.

Every refusal the program makes raises `InputRefused` with a sentence a radiologist understands;
the CLI prints it as one line and exits with code 2, the GUI shows it in a message box.
"""


class RadAssistError(Exception):
    """Base class: something the user can act on, never a programming error."""


class InputRefused(RadAssistError):
    """The input cannot or must not be read (missing, corrupt, unsupported, not a chest radiograph)."""


class ModelError(RadAssistError):
    """A model file is missing, does not match its card, or cannot be loaded."""
