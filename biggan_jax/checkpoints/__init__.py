"""Checkpoints: a run's own, converted ones, pretrained downloads, the best-FID one.

`biggan_jax.load_generator(path)` opens any of them for sampling (sampling/loading.py).
"""

from biggan_jax.checkpoints.errors import CheckpointError
