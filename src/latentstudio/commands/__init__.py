"""Command-line commands, one module per area; see latentstudio.cli."""
