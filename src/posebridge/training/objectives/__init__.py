"""Training objectives that add losses to the lifter's training (semi-supervised video, multi-view)."""
