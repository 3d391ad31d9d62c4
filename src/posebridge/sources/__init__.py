"""Where data comes from: dataset converters and downloads, 2D detectors, the synthetic benchmark."""
