"""Random FID-Inception weights in pytorch-fid's format, pytorch-fid itself, photo-like images.

Shared by tests/evaluation/test_inception.py, test_metrics.py and tests/test_fid.py.
"""

import collections
import contextlib

import jax
import numpy as np
import pytest

import pytorch_fid_shim
from biggan_jax.evaluation import inception

RTOL = 1e-4


def rel_err(a, b):
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  return float(np.abs(a - b).max() / np.abs(b).max())


def _torch_names(key: tuple[str, ...]) -> str:
  """Our variable path -> pytorch-fid's state-dict name (the inverse of the loader)."""
  collection, *mod, leaf = key
  if collection == 'batch_stats':
    return '.'.join(mod + ['running_' + leaf])
  return '.'.join(mod + [{'kernel': 'weight', 'scale': 'weight', 'bias': 'bias'}[leaf]])


def random_state_dict(seed: int = 0) -> dict[str, np.ndarray]:
  """A pytorch-fid state dict (numpy) of random weights that keep activations O(1).

  He-initialised convs (std sqrt(2 / fan_in)) keep the ReLU activations'
  scale through the 94 BasicConvs; BN statistics and affines are random
  (mean ~ N(0, 0.1), var ~ U(0.5, 2), scale ~ U(0.5, 1.5), bias ~ N(0, 0.2))
  so that the loader's mapping of each is exercised.
  """
  from flax import traverse_util
  rng = np.random.default_rng(seed)
  state = {}
  for key, leaf in traverse_util.flatten_dict(inception.expected_variables()).items():
    shape, name = leaf.shape, _torch_names(key)
    if key[-1] == 'kernel' and len(shape) == 4:  # HWIO -> OIHW
      fan_in = shape[0] * shape[1] * shape[2]
      value = rng.normal(0, np.sqrt(2 / fan_in), shape).transpose(3, 2, 0, 1)
    elif key[-1] == 'kernel':  # fc
      value = rng.normal(0, 1 / np.sqrt(shape[0]), shape).T
    elif key[-1] == 'scale':
      value = rng.uniform(0.5, 1.5, shape)
    elif key[-1] == 'bias':
      value = rng.normal(0, 0.2, shape)
    elif key[-1] == 'mean':
      value = rng.normal(0, 0.1, shape)
    else:
      value = rng.uniform(0.5, 2, shape)
    state[name] = np.ascontiguousarray(value, np.float32)
    if key[-1] == 'mean':
      state[name.replace('running_mean', 'num_batches_tracked')] = np.array(7, np.int64)
  return state


def save_pth(state: dict[str, np.ndarray], path, **kwargs) -> None:
  import torch
  torch.save(collections.OrderedDict((k, torch.from_numpy(v)) for k, v in state.items()),
             path, **kwargs)


@contextlib.contextmanager
def one_torch_thread():
  """torch on one thread: on a busy 2-core machine its 2 OpenMP threads run ~10x slower."""
  import torch
  threads = torch.get_num_threads()
  torch.set_num_threads(1)
  try:
    yield
  finally:
    torch.set_num_threads(threads)


def pytorch_fid_inception():
  """pytorch_fid.inception (see pytorch_fid_shim); skips without it."""
  fid_inception = pytorch_fid_shim.import_pytorch_fid()
  if fid_inception is None:
    pytest.skip('torch and pytorch-fid are needed for the parity tests')
  return fid_inception


def images(n, size, seed):
  """Smooth random uint8 images (a coarse field upsampled, plus noise), like photos."""
  rng = np.random.default_rng(seed)
  coarse = rng.uniform(0, 255, (n, 4, 4, 3))
  smooth = np.asarray(jax.image.resize(coarse, (n, size, size, 3), 'bicubic'))
  return np.clip(smooth + rng.normal(0, 20, smooth.shape), 0, 255).astype(np.uint8)
