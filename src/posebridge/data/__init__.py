"""Data on disk and in memory: the dataset store, 2D detection files, training windows, video."""
