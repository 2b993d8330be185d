"""The ``s5geo`` command (typer): a thin layer that parses, calls the library and shows progress."""
