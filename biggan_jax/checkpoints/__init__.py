"""Checkpoints: a run's own (training), converted ones, the best-FID one, and opening them.

`load_generator(path)` opens any of them for sampling (checkpoints/loading.py).
"""

from biggan_jax.checkpoints.errors import CheckpointError
from biggan_jax.checkpoints.loading import load_generator
