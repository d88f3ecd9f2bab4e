"""Fine-tuning: a new run's G, EMA G and D start from another model's weights.

    python -m biggan_jax.main --config=configs/imagenet128.py --workdir=W --init_from=DIR

DIR is a converted checkpoint directory (checkpoints/converted.py:
G, and D when the source had one) or a training workdir (its latest
checkpoint's G, D and EMA G, with their BN and SN state). The optimiser states,
the step and the RNG start fresh, as a new run's; a D the source lacks keeps
its fresh initialisation. The config must build DIR's architecture: the model
fields that change parameter shapes are compared before anything is built, and
a mismatch names them and the config that fits.

Only a new run is initialised this way: when W already holds a checkpoint,
the loop resumes it and ignores --init_from, so a preempted fine-tune goes on
from where it stopped instead of starting over.

Its own module, not part of checkpoints/run_checkpoints.py: that one saves and
restores a run's own state, this one maps someone else's weights into a fresh
state and checks that they fit.
"""

import dataclasses
import importlib.resources
import os
import shlex

import jax
import numpy as np
from absl import logging
from etils import epath
import orbax.checkpoint as ocp

from biggan_jax import config as config_lib
from biggan_jax.checkpoints import converted, errors
from biggan_jax.models import architectures
from biggan_jax.checkpoints import run_checkpoints
from biggan_jax.models.truncation import BN_STATS_BY_TRUNCATION as TABLES


class InitFromError(ValueError):
  """--init_from names something a run cannot start from; one line says why."""


@dataclasses.dataclass
class Source:
  """What --init_from points at."""
  path: epath.Path
  kind: str                         # 'converted' or 'workdir'
  model: dict                       # its config.model
  has_discriminator: bool
  checkpoints: epath.Path | None = None  # 'workdir': the Orbax checkpoints folder
  step: int | None = None               # 'workdir': the checkpoint used
  num_bn_stats: int | None = None       # 'tfhub' convention: rows of its τ-indexed BN tables


# ---------------------------------------------------------------------------
# The architecture check.
# ---------------------------------------------------------------------------

def _shape_fields(m, family: str, discriminator: bool) -> dict:
  """The config.model values that decide parameter shapes (not eps, init, dtype...)."""
  get = m.get if isinstance(m, dict) else (lambda k, d=None: m[k] if k in m else d)
  base = config_lib.base_config().model
  value = lambda k: get(k, base[k])
  fields = {k: value(k) for k in ('family', 'resolution', 'num_classes', 'ch', 'dim_z',
                                  'shared_dim', 'g_attn', 'output_conv_channels')}
  fields['g_attn'] = _attn(fields['g_attn'])
  if family == 'biggan':
    fields['hierarchical_z'] = value('hierarchical_z')
    fields['shared_embedding'] = value('shared_embedding')
    if not fields['shared_embedding']:
      del fields['shared_dim']  # no shared table: its size shapes nothing.
  else:
    fields['g_depth'] = value('g_depth')
  if discriminator:
    fields['d_ch'] = value('d_ch') or value('ch')  # the width D is built with
    fields['d_attn'] = _attn(value('d_attn'))
    if family == 'biggan_deep':
      fields['d_depth'] = value('d_depth')
  return fields


def _attn(spec) -> str:
  """'64' and '064', '' and 'none': one spelling, so equal layouts compare equal."""
  try:
    return '_'.join(map(str, architectures.parse_attention('attn', spec)))
  except ValueError:
    return str(spec)


def shipped_configs() -> epath.Path | None:
  """The configs/ folder: the checkout's, or the copy installed as biggan_jax.configs."""
  try:
    folder = epath.Path(str(importlib.resources.files('biggan_jax.configs')))
  except ModuleNotFoundError:
    return None
  return folder if folder.is_dir() else None


def _shown(path: epath.Path) -> str:
  """configs/X.py from the checkout's root, else the installed file's full path."""
  relative = os.path.relpath(path)
  return relative if not relative.startswith('..') else str(path)


def _matching_config_files(wanted: dict, family: str, discriminator: bool) -> list[str]:
  """Shipped configs/*.py whose model has exactly `wanted`'s shapes."""
  folder = shipped_configs()
  if folder is None:
    return []
  found = []
  for path in sorted(p for p in folder.glob('*.py') if not p.name.startswith('_')):
    try:
      model = config_lib.from_file(path).model
    except Exception:  # a broken config suggests nothing.
      continue
    if _shape_fields(model, family, discriminator) == wanted:
      found.append(_shown(path))
  return found


def architecture_difference(config, model: dict, has_discriminator: bool) -> str | None:
  """Where config.model cannot hold the weights of `model` (another run's config.model):
  'in model.ch (4 there, 8 here); add --config.model.ch=4', or None when every
  shape field agrees. Also used when a run resumes its workdir (checkpoints/resume.py)."""
  family = model.get('family', 'biggan')
  theirs = _shape_fields(model, family, has_discriminator)
  ours = _shape_fields(config.model, family, has_discriminator)  # the same keys
  differ = [k for k in theirs if ours[k] != theirs[k]]
  if not differ:
    return None
  listed = ', '.join(f'model.{k} ({theirs[k]!r} there, {ours[k]!r} here)' for k in differ)
  overrides = ' '.join(f'--config.model.{k}={shlex.quote(str(theirs[k]))}' for k in differ)
  files = _matching_config_files(theirs, family, has_discriminator)
  fix = f'use --config={files[0]} or add {overrides}' if files else f'add {overrides}'
  return f'in {listed}; {fix}'


def check_architecture(config, source: Source) -> None:
  """Raises InitFromError naming every shape field where config.model and DIR differ."""
  difference = architecture_difference(config, source.model, source.has_discriminator)
  if difference:
    raise InitFromError(f'--init_from={source.path}: its model differs from the config\'s '
                        f'{difference}')


# ---------------------------------------------------------------------------
# What DIR is.
# ---------------------------------------------------------------------------

def _training_checkpoints(path: epath.Path):
  """(checkpoints folder, step or None) when `path` is a workdir, its
  checkpoints/ or one checkpoints/<step>; else None."""
  if (path / 'checkpoints').is_dir():
    return path / 'checkpoints', None
  if path.name.isdigit() and (path / 'state').is_dir():
    return path.parent, int(path.name)
  if any(p.name.isdigit() and (p / 'state').is_dir() for p in path.iterdir()):
    return path, None
  return None


def describe(path) -> Source:
  """Reads DIR's meta (no weights); raises InitFromError for anything else."""
  path = epath.Path(path)
  if not path.exists():
    raise InitFromError(f'--init_from={path}: no such directory')
  if not path.is_dir():
    raise InitFromError(f'--init_from={path}: a file; give a converted checkpoint '
                        'directory or a training workdir')
  if converted.is_converted(path):
    try:
      meta = converted.read_meta(path)
    except converted.CheckpointDirError as e:
      raise InitFromError(f'--init_from: {e}') from None
    return Source(path, 'converted', dict(meta['model']),
                  bool(meta.get('has_discriminator')) and (path / converted.DISCRIMINATOR).is_dir(),
                  num_bn_stats=meta.get('num_bn_stats'))
  found = _training_checkpoints(path)
  if found is None:
    raise InitFromError(f'--init_from={path}: neither a converted checkpoint directory '
                        '(python -m biggan_jax.convert) nor a training workdir')
  folder, step = found
  mngr = run_checkpoints.manager(folder, read_only=True)
  step = mngr.latest_step() if step is None else step
  if step is None:
    raise InitFromError(f'--init_from={path}: a training workdir without a checkpoint '
                        '(has the run saved one yet?)')
  try:
    meta = mngr.restore(step, args=ocp.args.Composite(
        meta=ocp.args.JsonRestore()))['meta']
  except Exception as e:  # Orbax raises many kinds.
    raise InitFromError(f'--init_from={path}: cannot read checkpoint {step}\'s meta '
                        f'({errors.describe_error(e)})') from None
  if not isinstance(meta, dict) or meta.get('kind') != run_checkpoints.TRAIN_KIND or 'model' not in meta:
    raise InitFromError(f'--init_from={path}: checkpoint {step} is not a biggan_jax '
                        'training checkpoint')
  return Source(path, 'workdir', dict(meta['model']), True, folder, step)


def has_checkpoint(workdir) -> bool:
  """True when `workdir` holds a finished checkpoint, which a run resumes instead."""
  folder = epath.Path(workdir) / 'checkpoints'
  if not folder.is_dir():
    return False
  return run_checkpoints.manager(folder, read_only=True).latest_step() is not None


def check(config, path, workdir) -> Source | None:
  """Fails fast, before anything is built; None when `workdir` will resume instead."""
  if has_checkpoint(workdir):
    return None
  source = describe(path)
  check_architecture(config, source)
  return source


# ---------------------------------------------------------------------------
# Loading into a fresh state.
# ---------------------------------------------------------------------------

def _placed_like(values, like):
  """`values` (arrays on one device) laid out as `like`'s leaves (the run's mesh)."""
  def place(value, target):
    host = np.asarray(value)
    return jax.make_array_from_callback(target.shape, target.sharding, lambda i: host[i])
  return jax.tree.map(place, values, like)


def _restore_converted(source: Source, item: str, params, collections, copies: int = 1):
  """`copies` separate (params, collections) pairs: G and EMA G must not share
  buffers, since the train step donates the state.

  A 'tfhub'-convention G (TF-Hub, pytorch-pretrained-BigGAN) also holds BN
  statistics per truncation; its batch_stats are the τ = 1 row, the untruncated
  z a run trains with, so the tables are read (Orbax restores whole trees) and
  dropped.
  """
  like = {'params': params, **collections}
  target = dict(like)
  if item == converted.GENERATOR and source.num_bn_stats:
    target[TABLES] = jax.tree.map(
        lambda s: jax.ShapeDtypeStruct((source.num_bn_stats, *s.shape), s.dtype),
        collections['batch_stats'])
  try:
    restored = converted.restore(source.path, item, target)
  except converted.CheckpointDirError as e:
    raise InitFromError(f'--init_from: {e}') from None
  restored = {k: v for k, v in restored.items() if k != TABLES}
  out = []
  for _ in range(copies):
    variables = dict(_placed_like(restored, like))
    out.append((variables.pop('params'), variables))
  return out


def initialize(state, config, path):
  """`state` (a fresh TrainState) with G, EMA G and D taken from DIR.

  Everything else (Adam states, step, RNG, singular values) stays as created.
  """
  source = describe(path)
  check_architecture(config, source)
  if source.kind == 'workdir':
    try:
      restored, _ = run_checkpoints.restore_state(
          run_checkpoints.manager(source.checkpoints, read_only=True), source.step, state)
    except Exception as e:  # Orbax raises many kinds.
      errors.collect_failed_reads()
      raise InitFromError(f'--init_from={source.path}: cannot restore checkpoint '
                          f'{source.step} ({errors.describe_error(e)})') from None
    logging.warning('--init_from=%s: G, EMA G and D from its checkpoint %d; optimiser '
                    'states and step start fresh', source.path, source.step)
    return state.replace(
        g_params=restored.g_params, g_state=restored.g_state,
        ema_params=restored.ema_params, ema_state=restored.ema_state,
        d_params=restored.d_params, d_state=restored.d_state)

  # The converted G is what its source samples with (an EMA G, where the
  # source kept one), so the run's G and EMA G both start from it.
  (g_params, g_state), (ema_params, ema_state) = _restore_converted(
      source, converted.GENERATOR, state.g_params, state.g_state, copies=2)
  state = state.replace(g_params=g_params, g_state=g_state,
                        ema_params=ema_params, ema_state=ema_state)
  if source.has_discriminator:
    [(d_params, d_state)] = _restore_converted(source, converted.DISCRIMINATOR,
                                               state.d_params, state.d_state)
    state = state.replace(d_params=d_params, d_state=d_state)
    logging.warning('--init_from=%s: G, EMA G and D from the converted checkpoint; '
                    'optimiser states and step start fresh', source.path)
  else:
    logging.warning('--init_from=%s: G and EMA G from the converted checkpoint; it has '
                    'no discriminator, so D keeps its fresh initialisation', source.path)
  return state
