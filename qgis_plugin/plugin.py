"""The plugin object QGIS loads: registers the Processing provider and adds the GUI entries.

QGIS calls :meth:`initProcessing` alone where there is no GUI (``qgis_process``), and
:meth:`initGui` in the desktop application; both are safe to call in either order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qgis.core import Qgis, QgsApplication, QgsMessageLog
from qgis.PyQt.QtGui import QIcon
from qgis.PyQt.QtWidgets import QAction, QToolBar

from .backend import s5geo_problem
from .provider import S5geoProvider

MENU = "&s5geo"
ICONS = Path(__file__).parent / "icons"


class S5geoPlugin:
    """Processing provider, a toolbar and a Raster-menu entry for the segmentation dialog and the
    model-info window."""

    def __init__(self, iface: Any) -> None:
        self.iface = iface
        self.provider: S5geoProvider | None = None
        self.toolbar: QToolBar | None = None
        self.actions: list[QAction] = []
        self._dialogs: dict[str, Any] = {}

    def initProcessing(self) -> None:
        """Register the "s5geo" Processing provider (once)."""
        if self.provider is None:
            self.provider = S5geoProvider()
            QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self) -> None:
        """Add the toolbar button and menu entries, and warn once when s5geo is not installed."""
        self.initProcessing()
        self.toolbar = self.iface.addToolBar("s5geo")
        self.toolbar.setObjectName("s5geoToolbar")
        window = self.iface.mainWindow()
        for icon, text, slot in (
            ("s5geo.svg", "Segment land cover…", self.show_segment_dialog),
            ("info.svg", "Model info…", self.show_model_info),
        ):
            action = QAction(QIcon(str(ICONS / icon)), text, window)
            action.triggered.connect(slot)
            self.iface.addPluginToRasterMenu(MENU, action)
            self.toolbar.addAction(action)
            self.actions.append(action)
        problem = s5geo_problem()
        if problem:
            QgsMessageLog.logMessage(problem, "s5geo", Qgis.Warning)
            self.iface.messageBar().pushMessage("s5geo", problem, Qgis.Warning, 0)

    def unload(self) -> None:
        """Remove everything :meth:`initGui` and :meth:`initProcessing` added."""
        for dialog in self._dialogs.values():
            dialog.close()
            dialog.deleteLater()
        self._dialogs.clear()
        for action in self.actions:
            self.iface.removePluginRasterMenu(MENU, action)
            action.deleteLater()
        self.actions.clear()
        if self.toolbar is not None:
            self.toolbar.deleteLater()
            self.toolbar = None
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None

    def show_segment_dialog(self) -> None:
        """Open (or raise) the segmentation dialog."""
        from .segment_dialog import SegmentDialog

        self._show("segment", lambda: SegmentDialog(self.iface, self.iface.mainWindow()))

    def show_model_info(self) -> None:
        """Open (or raise) the model-info window."""
        from .model_info import ModelInfoDialog

        self._show("info", lambda: ModelInfoDialog(self.iface.mainWindow()))

    def _show(self, key: str, create: Any) -> None:
        dialog = self._dialogs.get(key)
        if dialog is None:
            dialog = self._dialogs[key] = create()
        dialog.show()
        dialog.raise_()
        dialog.activateWindow()
