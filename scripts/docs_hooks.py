"""MkDocs hooks: pages generated from the repository at build time (``mkdocs.yml``: ``hooks``).

- ``index.md`` is README.md, with its links into ``docs/`` made relative to the site.
- ``changelog.md`` is CHANGELOG.md.
- ``cli.md`` is the ``--help`` of ``s5geo`` and of every command, as the command prints it.

Docstrings cross-reference in Sphinx's roles (``:func:`name```); the API pages show such a name as
code, without the role.

Generating them keeps one source for each text: the README and the command's own help.
"""

from __future__ import annotations

import io
import os
import re
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parent.parent
HELP_WIDTH = 100


def _site_links(markdown: str) -> str:
    """README links such as ``docs/FIT.md`` point at pages of the site (``FIT.md``)."""
    return re.sub(r"\]\(docs/", "](", markdown)


def _help(command: Any, name: str, parent: Any) -> tuple[str, Any]:
    """The plain-text ``--help`` of ``command`` and its click context."""
    context = type(command).context_class(
        command, info_name=name, parent=parent, terminal_width=HELP_WIDTH,
        max_content_width=HELP_WIDTH,
    )  # fmt: skip
    printed = io.StringIO()
    with redirect_stdout(printed):
        text = command.get_help(context)
    return (text or printed.getvalue()).rstrip(), context


def cli_reference() -> str:
    """Markdown of ``s5geo --help`` and ``s5geo COMMAND --help`` for every command."""
    os.environ["COLUMNS"] = str(HELP_WIDTH)
    import typer.core
    import typer.main

    typer.core.HAS_RICH = False  # click's plain layout: no boxes, no colour codes
    from s5geo.cli.main import app

    root = typer.main.get_command(app)
    text, context = _help(root, "s5geo", None)
    parts = [
        "# Command-line reference",
        "",
        "Generated from the command's own help (`s5geo COMMAND --help`) when the site is built.",
        "Exit status: 0 on success, 2 for a mistake the user can fix (one `error: ...` line on",
        "stderr), 130 after Ctrl-C, 143 after SIGTERM, 1 for a failure of s5geo itself.",
        "",
        "## s5geo",
        "",
        "```text",
        text,
        "```",
    ]
    for name, command in root.commands.items():  # type: ignore[attr-defined]
        sub, _ = _help(command, name, context)
        parts += ["", f"## s5geo {name}", "", "```text", sub, "```"]
    return "\n".join(parts) + "\n"


# A Sphinx role before an inline code span, as the docstrings' Markdown renders it, and the "~"
# that shortens a dotted name.
_ROLE = re.compile(r":(?:class|func|meth|mod|attr|data|exc|obj):<code>~?")


def on_page_content(html: str, page: Any, config: Any, files: Files) -> str:
    """``:func:`name``` in a docstring shows as ``name`` in code, without the role."""
    return _ROLE.sub("<code>", html)


def on_files(files: Files, config: Any) -> Files:
    """Add the generated pages to the site."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    pages = {
        "index.md": _site_links(readme),
        "changelog.md": _site_links(changelog),
        "cli.md": cli_reference(),
    }
    for name, content in pages.items():
        files.append(File.generated(config, name, content=content))
    return files
