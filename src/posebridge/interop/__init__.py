"""Other projects' files: VideoPose3D checkpoints."""
