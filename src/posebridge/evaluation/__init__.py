"""Metrics and evaluation of models on test sets."""
