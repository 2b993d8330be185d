"""s5geo: semi-supervised land-cover mapping from georeferenced imagery to GIS layers.

Importing the package is cheap and never imports torch: the deployment install (inference,
vectorization, model files, CLI) works without it. Training-side subpackages import their heavy
dependencies themselves.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("s5geo")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
