"""pyproject.toml lists every package, since automatic discovery cannot map cli/ to s5geo.cli."""

import tomllib
from helpers import ROOT


def test_every_package_is_listed() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    found = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for init in (ROOT / "s5geo").rglob("__init__.py")
    } | {"s5geo.cli"}
    assert config["package-dir"]["s5geo.cli"] == "cli"
    assert listed == found
