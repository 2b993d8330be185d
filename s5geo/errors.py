"""Exceptions that separate what the user can fix from failures of s5geo itself.

The command line turns :class:`UserError` into one ``error: ...`` line on stderr and exit status 2;
anything else is a bug (exit status 1). The QGIS plugin shows the message of a ``UserError`` as a
readable Processing error.
"""


class UserError(Exception):
    """Bad input the user can fix: a missing file, a mismatched raster, a refused overwrite."""


class Cancelled(Exception):
    """The caller asked to stop (progress callback returned False, Ctrl-C, QGIS Cancel)."""
