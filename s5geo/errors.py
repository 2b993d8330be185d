"""Exceptions that separate what the user can fix from failures of s5geo itself.

The command line turns :class:`UserError` into one ``error: ...`` line on stderr and exit status 2;
anything else is a bug (exit status 1). The QGIS plugin shows the message of a ``UserError`` as a
readable Processing error. :func:`install_hint` is the one wording of how to add an optional
extra, so every message that asks for one says the same thing.

The bottom layer: imports only the standard library.
"""

from __future__ import annotations

import string
from collections.abc import Mapping


class UserError(Exception):
    """Bad input the user can fix: a missing file, a mismatched raster, a refused overwrite."""


class ParameterError(UserError):
    """A user error about parameters: a value outside its valid range, or one the input at hand
    cannot take (a tile size a model cannot run, polygons of a scene without a CRS).

    ``template`` is the message with a ``{name}`` field for each parameter it names (the other
    fields are filled from ``values``). ``str()`` words it with the library's parameter names;
    :meth:`worded` with a front end's own (the command line's flags, the QGIS fields).
    """

    def __init__(self, template: str, **values: object) -> None:
        super().__init__(template)
        self.template = template
        self.values = values

    @property
    def parameters(self) -> tuple[str, ...]:
        """The parameters the message names, in order of first mention."""
        fields = (field for _, field, _, _ in string.Formatter().parse(self.template) if field)
        return tuple(dict.fromkeys(f for f in fields if f not in self.values))

    def worded(self, names: Mapping[str, str]) -> str:
        """The message with each parameter called ``names[parameter]`` (its own name if absent)."""
        called = {p: names.get(p, p) for p in self.parameters}
        return self.template.format(**called, **self.values)

    def __str__(self) -> str:
        return self.worded({})


class Cancelled(Exception):
    """The caller asked to stop (progress callback returned False, Ctrl-C, QGIS Cancel)."""


def install_hint(extra: str) -> str:
    """How to add the optional dependencies ``extra`` (``train``, ``gpu``), as one message clause.

    s5geo is not published on PyPI yet, so the extra is installed from a clone of the repository
    or from the wheel ``make dist`` builds (README, Install).
    """
    return (
        f"install s5geo's {extra} extra: pip install '.[{extra}]' from a clone, "
        f"or the wheel from make dist with [{extra}] (README: Install)"
    )
