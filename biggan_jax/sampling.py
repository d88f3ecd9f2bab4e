"""Sampling from a trained or converted BigGAN: truncation, interpolation, images.

    sampler = biggan_jax.load_generator('runs/tiny')        # a training workdir
    sampler = biggan_jax.load_generator('checkpoints/biggan128')  # a converted one
    images = sampler.sample([1, 207, 980], truncation=0.5, seed=0)  # (3, R, R, 3) in [-1, 1]
    sampling.to_pil(images)[0].save('goldfish.png')

`load_generator` opens a training workdir (its latest EMA G, whose BN
statistics are already standing statistics: biggan_jax/ema.py) or a converted
checkpoint directory (biggan_jax/convert/checkpoint_dir.py); the checkpoint's
meta says which truncation convention its model expects:
- 'paper' (biggan_jax runs, BigGAN-PyTorch): the truncation trick of Brock et
  al. 2019, Sec. 3.1: z ~ N(0, I) with every value outside ±τ resampled, i.e.
  z ~ truncnorm(-τ, τ); the BN statistics do not depend on τ.
- 'tfhub' (TF-Hub, pytorch-pretrained-BigGAN): z = τ · truncnorm(-2, 2), and
  τ (0 < τ <= 1) also selects the BN statistics: every BN holds 51 sets, for
  τ = 0, 0.02, ..., 1 (`bn_stats_at`). Explicit z are used as given (scaled
  already, as the package's truncated_noise_sample returns them), with the
  BN statistics of the τ passed beside them (default 1).

Interpolations follow the paper's Fig. 4 / App. D: linear in z at a fixed
class, or linear between two classes' shared embeddings at a fixed z.

Only JAX, Flax and Orbax are needed here (no TensorFlow), so this module runs
on a bare GPU machine.
"""

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from etils import epath

from biggan_jax import checkpoint
from biggan_jax import config as config_lib
from biggan_jax import models
from biggan_jax import visualize
from biggan_jax.convert import checkpoint_dir

CheckpointError = checkpoint.CheckpointError
TRAIN_KIND = 'biggan_jax.train'
BN_STATS_BY_TRUNCATION = 'batch_stats_by_truncation'  # the 'tfhub' convention's tables.


# ---------------------------------------------------------------------------
# Latents and images.
# ---------------------------------------------------------------------------

def check_truncation(truncation) -> None:
  """Raises ValueError unless `truncation` is None or a finite number > 0."""
  if truncation is None:
    return
  ok = isinstance(truncation, (int, float, np.floating, np.integer)) and not isinstance(
      truncation, bool)
  if not ok or not math.isfinite(truncation) or truncation <= 0:
    raise ValueError(f'truncation={truncation!r}: must be a number > 0 '
                     '(smaller: higher fidelity, less variety; None: no truncation)')


def truncated_z(rng, n: int, dim_z: int, truncation: float | None = None) -> jax.Array:
  """(n, dim_z) latents with the paper's truncation trick (Sec. 3.1).

  Values of z ~ N(0, I) outside [-τ, τ] are resampled until they fall inside,
  which is exactly the normal distribution truncated to [-τ, τ]. None: plain
  N(0, I).
  """
  if truncation is None:
    return jax.random.normal(rng, (n, dim_z), jnp.float32)
  check_truncation(truncation)
  t = float(truncation)
  return jax.random.truncated_normal(rng, -t, t, (n, dim_z), jnp.float32)


def tfhub_z(rng, n: int, dim_z: int, truncation: float) -> jax.Array:
  """TF-Hub's and pytorch-pretrained-BigGAN's latents: τ · truncnorm(-2, 2)."""
  return truncation * jax.random.truncated_normal(rng, -2.0, 2.0, (n, dim_z), jnp.float32)


def bn_stats_at(table, truncation: float):
  """The BN statistics for `truncation` from (n_stats, C) tables, as the source does it.

  pytorch-pretrained-BigGAN (BigGANBatchNorm.forward): coef, start =
  modf(τ / step) with step = 1 / (n_stats - 1); stats = s[start] · coef +
  s[start + 1] · (1 - coef) when coef != 0, else s[start]. The weights are the
  reverse of linear interpolation, and float rounding moves some grid values:
  τ = 0.14 gives 0.14 / 0.02 = 7.000000000000001, i.e. the stats of τ = 0.16,
  and τ = 0.58 those of 0.56. Reproduced as is, in Python floats, because
  that is what the source models sample with.
  """
  leaves = jax.tree.leaves(table)
  n_stats = leaves[0].shape[0]
  coef, start = math.modf(float(truncation) / (1.0 / (n_stats - 1)))
  start = int(start)

  def pick(t):
    t = np.asarray(t, np.float32)
    if coef == 0.0:
      return t[start]
    return t[start] * np.float32(coef) + t[start + 1] * np.float32(1 - coef)

  return jax.tree.map(pick, table)


def to_uint8(images) -> np.ndarray:
  """[-1, 1] float images -> uint8 in [0, 255]."""
  return visualize.to_uint8(images)


def to_pil(images):
  """(N, H, W, 3) -> a list of PIL images; (H, W, 3) -> one."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  array = to_uint8(images)
  if array.ndim == 3:
    return Image.fromarray(array)
  return [Image.fromarray(a) for a in array]


# ---------------------------------------------------------------------------
# The sampler.
# ---------------------------------------------------------------------------

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
  `class_names` (None unless the checkpoint carries them),
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
    self.class_names = meta.get('class_names')
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
    """Class ids (ints, or names when the checkpoint has 'class_names') -> int32 (n,).

    Raises ValueError naming the first unknown class.
    """
    items = [labels] if isinstance(labels, (str, int, np.integer)) else list(
        np.asarray(labels).reshape(-1) if isinstance(labels, (np.ndarray, jax.Array))
        else labels)
    if not items:
      raise ValueError('no class labels given')
    names = {name: i for i, name in enumerate(self.class_names or [])}
    lower = {name.lower(): i for name, i in names.items()}
    ids = []
    for item in items:
      if isinstance(item, (bool, np.bool_)):
        raise ValueError(f'class {item!r}: give class ids as integers')
      if isinstance(item, (int, np.integer)):
        i = int(item)
      elif isinstance(item, str) and item.strip() in names:
        i = names[item.strip()]
      elif isinstance(item, str) and item.strip().lower() in lower:
        i = lower[item.strip().lower()]
      elif isinstance(item, str) and item.strip().lstrip('-').isdigit():
        i = int(item)
      elif isinstance(item, str):
        where = ('it is not one of the checkpoint\'s class names' if names else
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
      return np.asarray(tfhub_z(rng, n, self.dim_z, truncation))
    return np.asarray(truncated_z(rng, n, self.dim_z, truncation))

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
      stats = jax.device_put(bn_stats_at(self._bn_table, truncation),
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

  to_uint8 = staticmethod(to_uint8)
  to_pil = staticmethod(to_pil)


# ---------------------------------------------------------------------------
# Loading.
# ---------------------------------------------------------------------------

def _model_config(model: dict[str, Any], where):
  m = config_lib.base_config().model
  try:
    for key, value in model.items():
      m[key] = value
    if m.family not in config_lib.FAMILIES or m.resolution not in config_lib.RESOLUTIONS[m.family]:
      raise ValueError(f'family {m.family!r} at resolution {m.resolution}')
  except (TypeError, ValueError, KeyError) as e:
    raise CheckpointError(f'{where}: its model config cannot be built ({e})') from None
  return m


def _abstract_variables(module, m):
  z = jnp.zeros((1, m.dim_z), jnp.float32)
  y = jnp.zeros((1,), jnp.int32)
  return jax.eval_shape(lambda: module.init({'params': jax.random.PRNGKey(0)}, z, y,
                                            train=False))


def _shapes(tree) -> dict[str, tuple]:
  leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
  return {jax.tree_util.keystr(k): (tuple(v.shape), jnp.dtype(v.dtype)) for k, v in leaves}


def _step_dirs(path: epath.Path) -> list[epath.Path]:
  return [p for p in path.iterdir() if p.name.isdigit() and (p / 'ema_generator').exists()]


def _not_a_checkpoint(path: epath.Path) -> CheckpointError:
  names = {p.name for p in path.iterdir()}
  if any(n.endswith('.pth') for n in names):
    return CheckpointError(
        f'{path} is a BigGAN-PyTorch weights folder; convert it first: python -m '
        f'biggan_jax.convert --source=biggan-pytorch --input={path} --output=DIR')
  if 'pytorch_model.bin' in names:
    return CheckpointError(
        f'{path} is a pytorch-pretrained-BigGAN folder; convert it first: python -m '
        f'biggan_jax.convert --source=huggingface --input={path} --output=DIR')
  if 'meta.json' in names:
    return CheckpointError(f'{path}/meta.json is not a biggan_jax checkpoint\'s meta')
  if {'config.json', 'metrics.jsonl'} & names:
    return CheckpointError(f'{path} is a training workdir without checkpoints/ '
                           '(has the run saved a checkpoint yet?)')
  return CheckpointError(
      f'{path}: not a biggan_jax checkpoint; give a training workdir (with checkpoints/) '
      'or a directory written by python -m biggan_jax.convert')


def _restore_training(directory: epath.Path, step: int | None, where):
  try:
    meta, variables = checkpoint.restore_ema_generator(str(directory), step)
  except CheckpointError:
    raise
  except Exception as e:  # pylint: disable=broad-except  # Orbax/tensorstore raise many kinds.
    problem = checkpoint_dir.describe_error(e)
  else:
    problem = None
  if problem is not None:
    checkpoint_dir.collect_failed_reads()
    raise CheckpointError(f'{where}: cannot restore its EMA generator ({problem}); '
                          'is the checkpoint complete?')
  if not isinstance(meta, dict) or meta.get('kind') != TRAIN_KIND or 'model' not in meta:
    raise CheckpointError(f'{where}: its meta is not a biggan_jax training checkpoint\'s')
  return meta, variables


def load_generator(path, step: int | None = None) -> Sampler:
  """A `Sampler` for a training workdir or a converted checkpoint directory.

  Args:
    path: a training workdir (or its checkpoints/ folder, or one
      checkpoints/<step> folder), or a directory written by
      `python -m biggan_jax.convert`.
    step: for a training workdir, which checkpoint (default: the latest).
  Raises:
    CheckpointError (a ValueError) with one line saying what is wrong.
  """
  path = epath.Path(path)
  if not path.exists():
    raise CheckpointError(f'{path}: no such checkpoint directory')
  if not path.is_dir():
    raise CheckpointError(f'{path}: a file; give a checkpoint directory')
  if checkpoint_dir.is_converted(path):
    try:
      meta = checkpoint_dir.read_meta(path)
    except checkpoint_dir.CheckpointDirError as e:
      raise CheckpointError(str(e)) from None
    variables = None  # restored below, into the shapes of meta's model.
  elif (path / 'checkpoints').is_dir():
    if not _step_dirs(path / 'checkpoints'):
      raise CheckpointError(f'{path}: checkpoints/ holds no checkpoint with an EMA '
                            'generator (has the run saved one yet?)')
    meta, variables = _restore_training(path / 'checkpoints', step, path)
  elif path.name.isdigit() and (path / 'ema_generator').exists():
    meta, variables = _restore_training(path.parent, int(path.name), path)
  elif _step_dirs(path):
    meta, variables = _restore_training(path, step, path)
  else:
    raise _not_a_checkpoint(path)

  convention = meta.get('truncation_convention', 'paper')
  if convention not in ('paper', 'tfhub'):
    raise CheckpointError(f'{path}: unknown truncation_convention {convention!r}')
  m = _model_config(meta['model'], path)
  module = models.create_generator(m)
  try:
    abstract = _abstract_variables(module, m)
  except Exception as e:  # pylint: disable=broad-except  # a config the model rejects.
    raise CheckpointError(f'{path}: its model config does not build a generator '
                          f'({type(e).__name__}: {e})') from None
  if convention == 'tfhub':
    n_stats = int(meta.get('num_bn_stats', 51))
    abstract = {**abstract, BN_STATS_BY_TRUNCATION: jax.tree.map(
        lambda s: jax.ShapeDtypeStruct((n_stats, *s.shape), s.dtype), abstract['batch_stats'])}
  if variables is None:
    try:
      variables = checkpoint_dir.restore(path, checkpoint_dir.GENERATOR, abstract)
    except checkpoint_dir.CheckpointDirError as e:
      raise CheckpointError(str(e)) from None
  if _shapes(abstract) != _shapes(variables):
    raise CheckpointError(f'{path}: its generator variables do not fit its model config '
                          '(a corrupted or hand-edited checkpoint?)')
  # A training checkpoint comes back replicated over the mesh it was saved
  # from; one device computes the same images without the copies.
  variables = jax.device_put(variables, jax.local_devices()[0])
  return Sampler(module, variables, meta, m)

