"""Host-local batches in the train step's layout.

Layout: images (num_d_steps, num_accumulations, per_host_micro_batch, R, R, 3)
in [-1, 1] and labels (num_d_steps, num_accumulations, per_host_micro_batch):
one fresh real batch per D step. Each host produces its own share; batches
are a pure function of (seed, step, host), so a resumed run continues the
same stream from its checkpointed position.

'fake' is a synthetic class-conditional dataset (a per-class colour and
stripe pattern plus noise) for tests and benchmarks.
"""

import itertools

import jax
import numpy as np


class DatasetError(ValueError):
  """A dataset that cannot be read; the message names the path or name."""


def per_host_micro_batch(config) -> int:
  micro = config.batch_size // config.num_accumulations
  return micro // jax.process_count()


def fake_batch(config, step: int, process_index: int) -> dict:
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
  n = per_host_micro_batch(config)
  rows = slice(process_index * n, (process_index + 1) * n)
  return {'image': np.clip(images[:, :, rows], -1, 1).astype(np.float32),
          'label': labels[:, :, rows].astype(np.int32)}


def check(config) -> None:
  """Fails fast (before any model is built) on a dataset that cannot be read."""
  if config.dataset.name != 'fake':
    raise DatasetError(
        f"dataset.name={config.dataset.name!r}: only 'fake' can train yet; TFDS and "
        "image-folder pipelines are not implemented in this version")


def create(config, start_step: int):
  """Iterator of host-local batches starting at `start_step`."""
  check(config)
  return (fake_batch(config, step, jax.process_index())
          for step in itertools.count(start_step))
