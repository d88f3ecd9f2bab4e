"""Finding and opening a generator for sampling: `load_generator(path)`.

`path` is a training workdir (its latest EMA G, whose BN statistics are
already standing statistics: training/ema.py), one of its checkpoints, its
best_fid/ folder, a converted checkpoint directory (checkpoints/converted.py),
or a pretrained model's name (checkpoints/pretrained.py).
The checkpoint's meta says which truncation convention its model expects
(models/truncation.py).
"""

import json
from typing import Any

import jax
import jax.numpy as jnp
from etils import epath

from biggan_jax import config as config_lib
from biggan_jax import models
from biggan_jax.checkpoints import converted, errors, pretrained, run_checkpoints
from biggan_jax.models import architectures
from biggan_jax.models import truncation as truncation_lib
from biggan_jax.sampling import sampler as sampler_lib

CheckpointError = errors.CheckpointError


def _model_config(model: dict[str, Any], where):
  m = config_lib.base_config().model
  try:
    for key, value in model.items():
      m[key] = value
    if (m.family not in architectures.FAMILIES
        or m.resolution not in architectures.RESOLUTIONS[m.family]):
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
    meta, variables = run_checkpoints.restore_ema_generator(str(directory), step)
  except CheckpointError:
    raise
  except Exception as e:  # Orbax/tensorstore raise many kinds.
    problem = errors.describe_error(e)
  else:
    problem = None
  if problem is not None:
    errors.collect_failed_reads()
    raise CheckpointError(f'{where}: cannot restore its EMA generator ({problem}); '
                          'is the checkpoint complete?')
  if not isinstance(meta, dict) or meta.get('kind') != run_checkpoints.TRAIN_KIND or 'model' not in meta:
    raise CheckpointError(f'{where}: its meta is not a biggan_jax training checkpoint\'s')
  return meta, variables


def _run_class_names(path: epath.Path) -> dict:
  """{'class_names': 'imagenet'} for a run on ImageNet (its config.json's dataset), else {}.

  `path` is the workdir, its checkpoints/ or one checkpoint; the class ids of
  TFDS's imagenet2012 are ImageNet's (sampling/class_names.py).
  """
  for folder in (path, path.parent, path.parent.parent):
    if (folder / 'config.json').is_file() and (folder / 'checkpoints').is_dir():
      try:
        dataset = json.loads((folder / 'config.json').read_text()).get('dataset', {})
      except (OSError, ValueError, AttributeError):
        return {}
      name = str(dataset.get('name', '')) if isinstance(dataset, dict) else ''
      return {'class_names': 'imagenet'} if name.startswith('imagenet2012') else {}
  return {}


def load_generator(path, step: int | None = None) -> sampler_lib.Sampler:
  """A `Sampler` for a training workdir or a converted checkpoint directory.

  Args:
    path: a training workdir (or its checkpoints/ folder, or one
      checkpoints/<step> folder), a directory written by
      `python -m biggan_jax.convert`, or a pretrained model: a name
      (biggan-deep-128, -256, -512) or hf://owner/repo, downloaded and
      converted once into the cache (checkpoints/pretrained.py).
    step: for a training workdir, which checkpoint (default: the latest).
  Raises:
    CheckpointError (a ValueError) with one line saying what is wrong.
  """
  if pretrained.is_pretrained(path) and not epath.Path(path).exists():
    path = pretrained.fetch(path)  # downloaded and converted once, then cached.
  path = epath.Path(path)
  if not path.exists():
    raise CheckpointError(f'{path}: no such checkpoint directory; or give a pretrained '
                          f'model: {", ".join(pretrained.RELEASES)}, hf://owner/repo')
  if not path.is_dir():
    raise CheckpointError(f'{path}: a file; give a checkpoint directory')
  if converted.is_converted(path):
    try:
      meta = converted.read_meta(path)
    except converted.CheckpointDirError as e:
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

  if variables is not None and 'class_names' not in meta:
    meta = {**meta, **_run_class_names(path)}
  convention = meta.get('truncation_convention', 'paper')
  if convention not in truncation_lib.CONVENTIONS:
    raise CheckpointError(f'{path}: unknown truncation_convention {convention!r}')
  m = _model_config(meta['model'], path)
  module = models.create_generator(m)
  try:
    abstract = _abstract_variables(module, m)
  except Exception as e:  # a config the model rejects.
    raise CheckpointError(f'{path}: its model config does not build a generator '
                          f'({type(e).__name__}: {e})') from None
  if convention == 'tfhub':
    n_stats = int(meta.get('num_bn_stats', 51))
    abstract = {**abstract, truncation_lib.BN_STATS_BY_TRUNCATION: jax.tree.map(
        lambda s: jax.ShapeDtypeStruct((n_stats, *s.shape), s.dtype), abstract['batch_stats'])}
  if variables is None:
    try:
      variables = converted.restore(path, converted.GENERATOR, abstract)
    except converted.CheckpointDirError as e:
      raise CheckpointError(str(e)) from None
  if _shapes(abstract) != _shapes(variables):
    raise CheckpointError(f'{path}: its generator variables do not fit its model config '
                          '(a corrupted or hand-edited checkpoint?)')
  # A training checkpoint comes back replicated over the mesh it was saved
  # from; one device computes the same images without the copies.
  variables = jax.device_put(variables, jax.local_devices()[0])
  return sampler_lib.Sampler(module, variables, meta, m)
