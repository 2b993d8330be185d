"""Fixtures for the tests that run inside real QGIS (through pytest-qgis).

Nothing here imports QGIS at module level: the normal test suite collects this folder too, and
each test module skips itself with ``pytest.importorskip("qgis.core")`` where QGIS is absent.
The plugin is made importable the way QGIS sees it: a folder named after the plugin id
(``s5geo_plugin``) that links to the source in ``qgis_plugin/``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# The project runs pytest with --import-mode=importlib, so sibling modules are not importable by
# default; tests/qgis cannot be a package either (it would shadow QGIS's own ``qgis`` package).
# Put this folder on sys.path for qgis_helpers.
sys.path.insert(0, str(Path(__file__).parent))

from qgis_helpers import PLUGIN_ID, SCENE

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def plugin_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A plugins folder holding ``s5geo_plugin`` -> ``qgis_plugin/``, importable as QGIS does."""
    folder = tmp_path_factory.mktemp("plugins")
    (folder / PLUGIN_ID).symlink_to(REPO / "qgis_plugin", target_is_directory=True)
    sys.path.insert(0, str(folder))
    return folder


@pytest.fixture(scope="session")
def scene_path(real_data: Path) -> Path:
    """The real NAIP scene (4 bands, uint8, EPSG:26914) from the shared data folder."""
    path = real_data / SCENE
    if not path.exists():
        pytest.skip(f"real data missing: {path} (set S5GEO_DATA)")
    return path


@pytest.fixture(scope="module")
def provider(qgis_processing: None, plugin_path: Path) -> Iterator[Any]:
    """The s5geo provider, registered by the plugin exactly as qgis_process does (no iface)."""
    import importlib

    plugin = importlib.import_module(PLUGIN_ID).classFactory(None)
    plugin.initProcessing()
    yield plugin.provider
    plugin.unload()


@pytest.fixture
def wait_for() -> Callable[..., Any]:
    """Run the Qt event loop until ``signal`` fires (or fail after ``timeout`` seconds).

    Background tasks report back through queued signals, which need a running event loop.
    """
    from qgis.PyQt.QtCore import QEventLoop, QTimer

    def wait(signal: Any, timeout: float = 120.0) -> list[Any]:
        received: list[Any] = []
        loop = QEventLoop()

        def done(*args: Any) -> None:
            received.append(args)
            loop.quit()

        signal.connect(done)
        QTimer.singleShot(int(timeout * 1000), loop.quit)
        loop.exec_()
        signal.disconnect(done)
        if not received:
            pytest.fail(f"no signal within {timeout} s")
        return list(received[0])

    return wait
