"""Benchmarks: commands that print speed figures (`python -m bench` runs them all)."""
