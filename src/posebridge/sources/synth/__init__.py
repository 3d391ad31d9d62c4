"""The synthetic benchmark: the embedded default data of posebridge.

- ``body``: an articulated body (kinematic tree, joint limits, per-subject anthropometry,
  anatomical landmarks) and every skeleton format's joints defined from the landmarks.
- ``motion``: motion kinds as joint-angle trajectories, performed with floor contact, foot
  locking and paths through the capture volume.
- ``floorwork``: floor work (kneeling, sitting and lying on the floor, getting up, crawling),
  kicks, punches, lunges, handstands, cartwheels and random poses within the joint limits;
  imported here so that its kinds join ``motion.ACTIONS`` whichever module is imported first.
- ``rigs``: camera rigs modelled on Human3.6M, MPI-INF-3DHP, 3DPW, CMU Panoptic and HumanEva.
- ``generate``: ``DatasetSpec`` and ``generate_dataset`` (datasets -> the dataset store),
  ``synthetic_specs`` (config.yaml's synthetic datasets) and ``tiny_specs`` (the same, tiny).
- ``detector``: the simulated 2D detector (COCO-17 with realistic errors).
- ``preview``: a PNG to judge a dataset at a glance.

Command line: ``posebridge synth generate``, ``posebridge synth preview``, ``posebridge detect-2d``.
"""

from posebridge.sources.synth import floorwork as _floorwork
from posebridge.sources.synth import motion as _motion

_motion.ACTIONS.update(_floorwork.ACTIONS)
