"""Command-line entry point (being built)."""

from __future__ import annotations


def main(argv: list[str] | None = None) -> int:
    """Run the CLI."""
    return 0
