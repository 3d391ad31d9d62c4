"""Geometry of bodies and cameras: skeleton formats, camera models, the canonical frame."""
