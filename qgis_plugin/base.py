"""What s5geo's Processing algorithms share: the icon, error translation, the child-process run
and the styling of the layers they load.

Each algorithm declares its parameters and turns them into a worker job (see worker.py); this base
runs the job in a child process (runner.py: progress, Cancel, the child's errors), shows s5geo's
warnings and errors in the algorithm's own terms (:meth:`S5geoAlgorithm.translate`) and styles the
class rasters Processing loads when it finishes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qgis.core import (
    QgsProcessingAlgorithm,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
)
from qgis.PyQt.QtGui import QIcon

from .backend import ReadableError, installed_s5geo
from .runner import run_job
from .styling import ClassStylePostProcessor

ICON = str(Path(__file__).parent / "icons" / "s5geo.svg")


class S5geoAlgorithm(QgsProcessingAlgorithm):
    """A Processing algorithm over one s5geo entry point; subclasses implement :meth:`_process`.

    Problems the analyst can fix are raised as :class:`ReadableError` anywhere in
    :meth:`_process` and reach Processing as a ``QgsProcessingException`` with the translated
    text, never a traceback.
    """

    def icon(self) -> QIcon:
        return QIcon(ICON)

    def createInstance(self) -> S5geoAlgorithm:
        return type(self)()

    def processAlgorithm(
        self,
        parameters: dict[str, Any],
        context: QgsProcessingContext,
        feedback: QgsProcessingFeedback,
    ) -> dict[str, Any]:
        try:
            installed_s5geo()
            return self._process(parameters, context, feedback)
        except ReadableError as exc:
            raise QgsProcessingException(self.translate(str(exc))) from None

    def _process(
        self,
        parameters: dict[str, Any],
        context: QgsProcessingContext,
        feedback: QgsProcessingFeedback,
    ) -> dict[str, Any]:
        """The algorithm's work: read the parameters, run the job, return the outputs."""
        raise NotImplementedError

    def translate(self, message: str) -> str:
        """s5geo's message in this algorithm's terms; as is unless a subclass knows better."""
        return message

    def run_child(self, job: dict[str, Any], feedback: QgsProcessingFeedback) -> dict[str, Any]:
        """Run a worker job in a child process and log its warnings; the child's summary.

        Raises :class:`ReadableError` for problems the analyst can fix and
        ``QgsProcessingException`` for a cancelled run or a failure of s5geo itself.
        """
        done = run_job(job, feedback)
        for warning in done["warnings"]:
            feedback.pushWarning(self.translate(warning))
        return done

    def style_on_load(self, context: QgsProcessingContext, *paths: str | None) -> None:
        """Style the class rasters and polygons at ``paths`` by class once Processing loads
        them (the model's colours and names; see styling.py)."""
        for path in paths:
            if path and context.willLoadLayerOnCompletion(path):
                details = context.layerToLoadOnCompletionDetails(path)
                details.setPostProcessor(ClassStylePostProcessor.create())

    def label_of(self, name: str) -> str:
        """What the analyst sees as parameter ``name``'s label (the name when it has none)."""
        definition = self.parameterDefinition(name)
        return definition.description() if definition is not None else name


def given(parameters: dict[str, Any], name: str) -> bool:
    """True when an optional parameter has a value (empty strings come from the dialogs)."""
    value = parameters.get(name)
    return value is not None and value != ""


def check_suffix(path: str, suffixes: tuple[str, ...], what: str) -> None:
    """Refuse an output path whose extension is not one of ``suffixes`` (``what`` says why)."""
    if not path.lower().endswith(suffixes):
        raise ReadableError(f"{what} ({' or '.join(suffixes)}); got {path}.")
