"""posebridge: 3D human pose from labeled datasets in many skeleton formats, unlabeled
monocular video and unlabeled multi-view video (VideoPose3D + MCSS + ACAE)."""

__version__ = "0.1.0"
