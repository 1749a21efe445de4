"""The command-line interface: options, exit codes and what a person reads on the terminal."""

from auditor.cli.app import app, main

__all__ = ["app", "main"]
