"""Synthetic class-conditional images (a per-class colour and stripe pattern plus noise).

For tests and benchmarks: no files, and the global batch of a step depends on
(seed, step) only, so any number of hosts sees the same data as one.
"""

import numpy as np

from biggan_jax.data import layout


def fake_batch(config, step: int, process_index: int, process_count: int | None = None) -> dict:
  """The host's rows of the global synthetic batch of `step`.

  The global batch depends on (seed, step) only, so any number of hosts sees
  the same data as one.
  """
  m = config.model
  micro = config.batch_size // config.num_accumulations
  shape = (config.num_d_steps, config.num_accumulations, micro)
  rng = np.random.default_rng([config.seed, step])
  labels = rng.integers(0, m.num_classes, shape)
  r = m.resolution
  grid = np.linspace(-1.0, 1.0, r, dtype=np.float32)
  phase = labels[..., None, None].astype(np.float32)
  stripes = np.sin(np.pi * (phase + 1) * grid[None, :])
  hue = np.stack([np.cos(phase + k * 2.1) for k in range(3)], -1)  # (..., 1, 1, 3)
  images = 0.6 * hue * stripes[..., None] + 0.1 * rng.standard_normal((*shape, r, r, 3))
  n = layout.per_host_micro_batch(config, process_count)
  rows = slice(process_index * n, (process_index + 1) * n)
  images = np.clip(images[:, :, rows], -1, 1).astype(np.float32)
  if config.dataset.get('image_dtype', 'float32') == 'uint8':  # as data/preprocess.py rounds
    images = np.round((images + 1.0) * 127.5).astype(np.uint8)
  return {'image': images, 'label': labels[:, :, rows].astype(np.int32)}
