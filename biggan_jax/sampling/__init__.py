"""Sampling: the Sampler and the truncation conventions it follows.

Open a checkpoint with `biggan_jax.load_generator(path)` (sampling/loading.py).
"""

from biggan_jax.models.truncation import (BN_STATS_BY_TRUNCATION, CONVENTIONS, bn_stats_at,
                                          check_truncation, tfhub_z, truncated_z)
from biggan_jax.sampling.sampler import Sampler
