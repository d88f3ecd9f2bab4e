"""The Sampler: a generator and its variables, ready to sample (eval mode, jitted, batched).

    sampler = biggan_jax.load_generator('runs/tiny')        # a training workdir
    sampler = biggan_jax.load_generator('checkpoints/biggan128')  # a converted one
    images = sampler.sample([1, 207, 980], truncation=0.5, seed=0)  # (3, R, R, 3) in [-1, 1]
    sampler.to_pil(images)[0].save('goldfish.png')

z is drawn in the checkpoint's truncation convention (models/truncation.py).
Explicit z are used as given (for 'tfhub', scaled already, as the package's
truncated_noise_sample returns them), with the BN statistics of the τ passed
beside them (default 1). Interpolations follow the paper's Fig. 4 / App. D:
linear in z at a fixed class, or linear between two classes' shared
embeddings at a fixed z.

Only JAX and Flax are needed here (no TensorFlow), so sampling runs on a bare
GPU machine.
"""

import functools
from typing import Any

import jax
import numpy as np

from biggan_jax.sampling import class_names as class_names_lib
from biggan_jax.models import truncation as truncation_lib
from biggan_jax.models.truncation import BN_STATS_BY_TRUNCATION, check_truncation
from biggan_jax.utils import images as images_lib


@functools.lru_cache(maxsize=8)
def _programs(module):
  """G's jitted eval-mode programs, shared by every Sampler of the same module.

  Variables are arguments, not closed-over constants, so that a 512 model's
  weights are not baked into the compiled program, and reloading a checkpoint
  (or another checkpoint of the same architecture) compiles nothing new.
  """
  from_labels = jax.jit(lambda v, z, y: module.apply(v, z, y, train=False))
  from_embeddings = jax.jit(lambda v, z, e: module.apply(v, z, None, train=False, y_embed=e))
  embed = jax.jit(lambda v, y: module.apply(v, y, method=module.embed_classes))
  return from_labels, from_embeddings, embed


class Sampler:
  """A generator and its variables, ready to sample (eval mode, jitted, batched).

  Attributes: `module` (the Flax generator), `variables`, `meta` (the
  checkpoint's), `model_config`, `resolution`, `dim_z`, `num_classes`,
  `class_names` (the checkpoint's, ImageNet's for ImageNet models, else None:
  sampling/class_names.py),
  `truncation_convention`.
  """

  def __init__(self, module, variables, meta: dict[str, Any], model_config):
    self.module = module
    self.variables = variables
    self.meta = meta
    self.model_config = model_config
    self.resolution = int(model_config.resolution)
    self.dim_z = int(model_config.dim_z)
    self.num_classes = int(model_config.num_classes)
    self.class_names = class_names_lib.names_for(meta, self.num_classes)
    self._class_index = class_names_lib.ClassIndex(self.class_names)
    self.truncation_convention = meta.get('truncation_convention', 'paper')
    self._bn_table = None
    if self.truncation_convention == 'tfhub':
      variables = dict(variables)
      self._bn_table = jax.device_get(variables.pop(BN_STATS_BY_TRUNCATION))
      self.variables = variables
    self._at_truncation = {}
    self._from_labels, self._from_embeddings, self._embed = _programs(module)

  def __repr__(self):
    m = self.model_config
    return (f'Sampler({m.family} {self.resolution}x{self.resolution}, ch {m.ch}, '
            f'dim_z {self.dim_z}, {self.num_classes} classes, '
            f'truncation convention {self.truncation_convention!r})')

  # ------------------------------------------------------------- classes
  def class_ids(self, labels) -> np.ndarray:
    """Class ids (ints, or names when the model has class names) -> int32 (n,).

    Raises ValueError naming the first unknown or ambiguous class.
    """
    items = [labels] if isinstance(labels, (str, int, np.integer)) else list(
        np.asarray(labels).reshape(-1) if isinstance(labels, (np.ndarray, jax.Array))
        else labels)
    if not items:
      raise ValueError('no class labels given')
    ids = []
    for item in items:
      if isinstance(item, (bool, np.bool_)):
        raise ValueError(f'class {item!r}: give class ids as integers')
      if isinstance(item, (int, np.integer)):
        i = int(item)
      elif isinstance(item, str) and item.strip().lstrip('-').isdigit():
        i = int(item)
      elif isinstance(item, str):
        i = self._class_index.lookup(item)
        if i is None:
          where = ('it is not one of the model\'s class names' if self.class_names else
                   'this checkpoint has no class names; give class ids '
                   f'0..{self.num_classes - 1}')
          raise ValueError(f'unknown class {item!r}: {where}')
      else:
        raise ValueError(f'class {item!r}: give class ids (integers) or names')
      if not 0 <= i < self.num_classes:
        raise ValueError(f'unknown class {item!r}: this model has classes '
                         f'0..{self.num_classes - 1}')
      ids.append(i)
    return np.asarray(ids, np.int32)

  def embed_classes(self, labels) -> np.ndarray:
    """The shared class embeddings (n, shared_dim) of `labels`."""
    return np.asarray(self._embed(self.variables, self.class_ids(labels)))

  # ------------------------------------------------------------- sampling
  def draw_z(self, n: int, truncation: float | None = None, seed: int = 0) -> np.ndarray:
    """(n, dim_z) latents in this checkpoint's truncation convention."""
    truncation = self._check_convention(truncation)
    rng = jax.random.PRNGKey(seed)
    if self.truncation_convention == 'tfhub':
      return np.asarray(truncation_lib.tfhub_z(rng, n, self.dim_z, truncation))
    return np.asarray(truncation_lib.truncated_z(rng, n, self.dim_z, truncation))

  def _z(self, z, n_labels: int, truncation, seed: int) -> np.ndarray:
    if z is None:
      return self.draw_z(n_labels, truncation, seed)
    z = np.asarray(z, np.float32)
    if z.ndim != 2 or z.shape[1] != self.dim_z:
      raise ValueError(f'z has shape {z.shape} but this model takes (n, {self.dim_z})')
    return z

  def _check_convention(self, truncation):
    """Checks τ; returns it ('tfhub': 1 when None, since τ picks BN statistics)."""
    check_truncation(truncation)
    if self.truncation_convention != 'tfhub':
      return truncation
    if truncation is None:
      return 1.0
    if truncation > 1:
      raise ValueError(f'truncation={truncation}: this checkpoint (TF-Hub / '
                       'pytorch-pretrained-BigGAN convention) has BN statistics for '
                       '0 < truncation <= 1')
    return float(truncation)

  def variables_at(self, truncation: float | None):
    """The variables to sample with at `truncation` (its BN statistics for 'tfhub')."""
    if self._bn_table is None:
      return self.variables
    truncation = self._check_convention(truncation)
    if truncation not in self._at_truncation:
      stats = jax.device_put(truncation_lib.bn_stats_at(self._bn_table, truncation),
                             jax.tree.leaves(self.variables)[0].sharding)
      self._at_truncation[truncation] = {**self.variables, 'batch_stats': stats}
    return self._at_truncation[truncation]

  def _run(self, fn, z: np.ndarray, cond: np.ndarray, batch_size: int,
           truncation=None) -> np.ndarray:
    """fn(variables, z, cond) over batches of `batch_size`; the last is padded so
    that one compiled program serves every batch."""
    variables = self.variables_at(truncation)
    if batch_size < 1:
      raise ValueError(f'batch_size={batch_size}: must be >= 1')
    n = z.shape[0]
    size = min(n, batch_size)
    out = []
    for start in range(0, n, size):
      zb, cb = z[start:start + size], cond[start:start + size]
      pad = size - zb.shape[0]
      if pad:
        zb = np.concatenate([zb, np.zeros((pad, *zb.shape[1:]), zb.dtype)])
        cb = np.concatenate([cb, np.zeros((pad, *cb.shape[1:]), cb.dtype)])
      out.append(np.asarray(fn(variables, zb, cb), np.float32)[:size - pad])
    return np.concatenate(out)

  def sample(self, labels, *, truncation: float | None = None, seed: int = 0,
             z=None, batch_size: int = 32) -> np.ndarray:
    """Images (n, R, R, 3), float32 in [-1, 1], in the order of `labels` / `z`.

    Args:
      labels: class ids or names, one per image (one label with n rows of `z`
        is used for all of them).
      truncation: τ of the truncation trick when z is drawn here; None: no
        truncation. Ignored for the 'paper' convention when `z` is given; for
        'tfhub' it also picks the BN statistics (None: 1).
      seed: draws z (when `z` is None).
      z: explicit latents (n, dim_z).
      batch_size: images per jitted call.
    """
    self._check_convention(truncation)
    y = self.class_ids(labels)
    z = self._z(z, len(y), truncation, seed)
    if len(y) == 1 and len(z) > 1:
      y = np.repeat(y, len(z))
    if len(y) != len(z):
      raise ValueError(f'{len(y)} labels but {len(z)} rows of z')
    return self._run(self._from_labels, z, y, batch_size, truncation)

  def sample_seeds(self, labels, seeds, *, truncation: float | None = None,
                   batch_size: int = 32) -> np.ndarray:
    """One image per seed (StyleGAN's generate.py --seeds): (n, R, R, 3) in [-1, 1].

    The z of seed s is `draw_z(1, truncation, s)`, drawn alone, so the image
    of seed s with label y is the same whichever seeds it is drawn with, and
    equals `sample([y], truncation=truncation, seed=s)`, up to float rounding:
    XLA's kernels may round a batch of 8 and a batch of 1 apart in the last
    bits (seen on an AMD EPYC host: 3e-7). `labels`: one per seed, or one for all.
    """
    self._check_convention(truncation)
    seeds = [int(s) for s in seeds]
    if not seeds:
      raise ValueError('no seeds given')
    z = np.concatenate([self.draw_z(1, truncation, s) for s in seeds])
    y = self.class_ids(labels)
    if len(y) not in (1, len(seeds)):
      raise ValueError(f'{len(y)} labels for {len(seeds)} seeds: give one or one per seed')
    return self.sample(y, z=z, truncation=truncation, batch_size=batch_size)

  def interpolate_z(self, z0, z1, labels, steps: int, *, truncation: float | None = None,
                    batch_size: int = 32) -> np.ndarray:
    """Images along the line from z0 to z1 at a fixed class (the paper's Fig. 4).

    z0, z1: (dim_z,) -> (steps, R, R, 3); or (n, dim_z), with one label or n,
    -> (n, steps, R, R, 3). The first and last images are G(z0, y), G(z1, y).
    `truncation` matters only for 'tfhub' checkpoints (their BN statistics).
    """
    self._check_convention(truncation)
    z0, z1, single = self._pair(z0, z1)
    y = self._broadcast(self.class_ids(labels), len(z0))
    t = self._weights(steps)
    z = ((1 - t) * z0[:, None] + t * z1[:, None]).reshape(-1, self.dim_z)
    images = self._run(self._from_labels, z, np.repeat(y, steps), batch_size, truncation)
    return self._shape(images, steps, single)

  def interpolate_classes(self, z, labels0, labels1, steps: int, *,
                          truncation: float | None = None,
                          batch_size: int = 32) -> np.ndarray:
    """Images along the line between two classes' shared embeddings, at fixed z.

    z: (dim_z,) -> (steps, R, R, 3); or (n, dim_z) -> (n, steps, R, R, 3).
    The first and last images are G(z, y0), G(z, y1). `truncation`: as in
    `interpolate_z`.
    """
    self._check_convention(truncation)
    z, _, single = self._pair(z, z)
    e0 = self.embed_classes(self._broadcast(self.class_ids(labels0), len(z)))
    e1 = self.embed_classes(self._broadcast(self.class_ids(labels1), len(z)))
    t = self._weights(steps)
    e = ((1 - t) * e0[:, None] + t * e1[:, None]).reshape(-1, e0.shape[-1])
    images = self._run(self._from_embeddings, np.repeat(z, steps, axis=0), e, batch_size,
                       truncation)
    return self._shape(images, steps, single)

  def _pair(self, a, b):
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    single = a.ndim == 1
    a, b = np.atleast_2d(a), np.atleast_2d(b)
    if a.shape != b.shape or a.ndim != 2 or a.shape[1] != self.dim_z:
      raise ValueError(f'z of shapes {a.shape}, {b.shape}: this model takes (dim_z,) '
                       f'or (n, dim_z) with dim_z={self.dim_z}')
    return a, b, single

  @staticmethod
  def _broadcast(y: np.ndarray, n: int) -> np.ndarray:
    if len(y) == 1:
      return np.repeat(y, n)
    if len(y) != n:
      raise ValueError(f'{len(y)} labels for {n} interpolations')
    return y

  @staticmethod
  def _weights(steps: int) -> np.ndarray:
    if not isinstance(steps, (int, np.integer)) or steps < 2:
      raise ValueError(f'steps={steps!r}: an interpolation needs at least 2 steps')
    return np.linspace(0.0, 1.0, int(steps), dtype=np.float32)[None, :, None]

  def _shape(self, images: np.ndarray, steps: int, single: bool) -> np.ndarray:
    images = images.reshape(-1, steps, *images.shape[1:])
    return images[0] if single else images

  to_uint8 = staticmethod(images_lib.to_uint8)
  to_pil = staticmethod(images_lib.to_pil)
