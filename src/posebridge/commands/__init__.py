"""Thin command-line entry points, one module per ``posebridge`` subcommand."""
