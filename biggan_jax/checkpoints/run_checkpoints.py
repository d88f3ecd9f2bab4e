"""Training checkpoints (Orbax): the full train state, and beside it what inference needs.

Each step directory holds three items:
- 'state': the whole TrainState (G, D, both Adam states, EMA G, SN and BN
  state, step, RNG) — for exact resumption;
- 'ema_generator': the EMA G's variables with standing BN statistics —
  restorable on its own (`load_generator`), without D or optimiser state;
- 'meta': JSON with the model config, the data position and the checksums of
  the other two items (checkpoints/integrity.py), verified on every restore.

A checkpoint that fails to restore or to verify is never used and never
deleted: `restore_newest` walks back to the newest one that works and moves
the newer, unusable ones to WORKDIR/skipped_checkpoints/ (Orbax would
otherwise keep treating them as the latest step and skip every save up to it).
"""

import json
import time

import jax
import numpy as np
from absl import logging
from etils import epath
import orbax.checkpoint as ocp

from biggan_jax.checkpoints import errors, integrity
from biggan_jax.checkpoints.errors import CheckpointError
from biggan_jax.utils import files

ITEMS = ('state', 'ema_generator', 'meta')
TRAIN_KIND = 'biggan_jax.train'  # meta['kind'] of a training checkpoint.
SKIPPED = 'skipped_checkpoints'  # beside checkpoints/: unusable or rolled-back steps.

# Orbax writes a replicated array "replica-parallel": one slice per replica, each
# its own device transfer. Below 1 MiB a slice costs more in dispatch than the
# parallel write saves, so smaller arrays are written whole by one replica
# (benchmarks/README.md, "Checkpoints"); Orbax's own handler, with its threshold.
MIN_SLICE_BYTES = 2**20


def _register_array_handler():
  verbosity = logging.get_verbosity()
  logging.set_verbosity(logging.ERROR)  # Orbax warns that it replaces its default: the point.
  try:
    ocp.type_handlers.register_type_handler(jax.Array, ocp.type_handlers.ArrayHandler(
        min_slice_bytes_for_replica_parallel=MIN_SLICE_BYTES), override=True)
  finally:
    logging.set_verbosity(verbosity)


_register_array_handler()


def manager(directory: str, *, max_to_keep: int | None = None,
            read_only: bool = False) -> ocp.CheckpointManager:
  """`read_only`: for restoring, creating nothing. Not Orbax's read_only option,
  which warns "Given directory is read only" on every open of a writable
  directory; a manager that is never asked to save writes nothing anyway."""
  options = ocp.CheckpointManagerOptions(
      max_to_keep=max_to_keep, create=not read_only,
      enable_async_checkpointing=not read_only)
  directory = epath.Path(directory)
  if '://' not in str(directory):
    directory = directory.absolute()
  return ocp.CheckpointManager(directory, item_names=ITEMS, options=options)


def save(mngr: ocp.CheckpointManager, step: int, state, ema_generator, meta: dict):
  """Asynchronous save; call `mngr.wait_until_finished()` before exiting.

  The checksums are computed on the device before Orbax copies the arrays out.
  """
  meta = {**meta, 'checksums': {'state': integrity.checksums(state),
                                'ema_generator': integrity.checksums(ema_generator)}}
  mngr.save(step, args=ocp.args.Composite(
      state=ocp.args.StandardSave(state),
      ema_generator=ocp.args.StandardSave(ema_generator),
      meta=ocp.args.JsonSave(meta)))


def _verify(step: int, item: str, tree, meta) -> None:
  """Raises CheckpointError when `tree` is not what was saved as `item`.

  Checkpoints written before checksums existed have none and pass.
  """
  expected = (meta.get('checksums') or {}).get(item) if isinstance(meta, dict) else None
  if expected is None:
    return
  problem = integrity.mismatch(tree, expected)
  if problem:
    raise CheckpointError(f'checkpoint {step}: its {item} is not what was saved ({problem})')


def restore_state(mngr: ocp.CheckpointManager, step: int, target):
  """Restores and verifies the TrainState at `step` into the shapes/shardings of `target`."""
  abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
  out = mngr.restore(step, args=ocp.args.Composite(
      state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()))
  _verify(step, 'state', out['state'], out['meta'])
  return out['state'], out['meta']


def _all_hosts(ok: bool) -> bool:
  """True when `ok` holds on every host, so that all take the same checkpoint."""
  if jax.process_count() == 1:
    return ok
  from jax.experimental import multihost_utils
  return bool(np.min(multihost_utils.process_allgather(np.int32(ok))))


def _problem(error: BaseException) -> str:
  errors.collect_failed_reads()
  return str(error) if isinstance(error, CheckpointError) else errors.describe_error(error)


def restore_newest(mngr: ocp.CheckpointManager, target):
  """(step, state, meta) of the newest checkpoint that restores and verifies; None if none exist.

  Each newer one that fails is named in one log line with the reason and, once
  a good one is found, moved to WORKDIR/skipped_checkpoints/. When none
  restores, nothing is moved and CheckpointError says so.
  """
  failed = []
  for step in sorted(mngr.all_steps(), reverse=True):
    try:
      state, meta = restore_state(mngr, step, target)
      problem = None
    except Exception as e:  # Orbax/TensorStore raise many kinds.
      problem = _problem(e)
    if not _all_hosts(problem is None):
      problem = problem or 'another host could not restore it'
    if problem is None:
      for bad, reason in failed:
        set_aside(mngr, bad, reason)
      return step, state, meta
    logging.warning('checkpoint %d cannot be used, trying an older one: %s', step, problem)
    failed.append((step, problem))
  if failed:
    raise CheckpointError(
        f'{mngr.directory}: none of its {len(failed)} checkpoints can be restored (step '
        f'{failed[0][0]}: {failed[0][1]}); nothing was moved or deleted')
  return None


def set_aside(mngr: ocp.CheckpointManager, step: int, reason: str) -> epath.Path:
  """Moves checkpoint `step` out of the manager's folder into skipped_checkpoints/.

  Never deletes: the folder keeps its name (plus .1, .2 ... when that step was
  set aside before), and skipped_checkpoints/skipped.jsonl records why.
  """
  mngr.wait_until_finished()
  source = epath.Path(mngr.directory) / str(step)
  folder = epath.Path(mngr.directory).parent / SKIPPED
  target = folder / str(step)
  if jax.process_index() == 0:
    folder.mkdir(parents=True, exist_ok=True)
    n = 0
    while target.exists():
      n += 1
      target = folder / f'{step}.{n}'
    _move(source, target)
    record = json.dumps({'step': step, 'moved_to': target.name, 'reason': reason,
                         'time': time.time()})
    files.append_line(folder / 'skipped.jsonl', record)
    logging.warning('checkpoint %d moved to %s (%s)', step, target, reason)
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils
    multihost_utils.sync_global_devices(f'set_aside_{step}')
  mngr.reload()
  return target


def _move(source: epath.Path, target: epath.Path) -> None:
  """A rename; object stores (gs://) cannot rename folders, so there: copy, then remove."""
  if '://' not in str(source):
    source.rename(target)
    return
  for path in source.iterdir():
    if path.is_dir():
      _move(path, target / path.name)
    else:
      target.mkdir(parents=True, exist_ok=True)
      path.copy(target / path.name)
  source.rmtree()


def newest_meta(directory) -> tuple[int, dict] | None:
  """(step, meta) of the newest checkpoint whose meta reads; JSON only, no arrays."""
  directory = epath.Path(directory)
  if not directory.is_dir():
    return None
  mngr = manager(directory, read_only=True)
  for step in sorted(mngr.all_steps(), reverse=True):
    try:
      meta = mngr.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))['meta']
    except Exception:  # an unreadable meta: restore_newest will say why.
      continue
    if isinstance(meta, dict):
      return step, meta
  return None


def _restore_ema(mngr, step):
  # A pod's checkpoint names devices this machine lacks: restore onto one local
  # device when the saved sharding cannot be rebuilt here.
  local = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
  out = mngr.restore(step, args=ocp.args.Composite(
      ema_generator=ocp.args.StandardRestore(fallback_sharding=local),
      meta=ocp.args.JsonRestore()))
  _verify(step, 'ema_generator', out['ema_generator'], out['meta'])
  return out['meta'], out['ema_generator']


def restore_ema_generator(directory: str, step: int | None = None):
  """(meta, variables) of the EMA generator, without D or optimiser state.

  With `step` None: the newest checkpoint whose EMA G restores and verifies;
  each newer one that fails is logged and listed in meta['skipped'] (nothing
  is moved: readers never change a workdir). With a `step`: that one or an error.
  """
  if not epath.Path(directory).is_dir():
    raise CheckpointError(f'{directory}: no such checkpoint directory')
  mngr = manager(directory, read_only=True)
  steps = sorted(mngr.all_steps(), reverse=True) if step is None else [step]
  if not steps:
    raise CheckpointError(f'{directory}: no checkpoint in it (was the run saved?)')
  skipped = []
  for s in steps:
    try:
      meta, variables = _restore_ema(mngr, s)
    except Exception as e:  # Orbax/TensorStore raise many kinds.
      if step is not None:
        raise
      skipped.append(f'checkpoint {s} skipped: {_problem(e)}')
      logging.warning('%s: %s', directory, skipped[-1])
      continue
    if skipped and isinstance(meta, dict):
      meta = {**meta, 'skipped': skipped}
    return meta, variables
  raise CheckpointError(f'{directory}: none of its {len(steps)} checkpoints has an EMA '
                        f'generator that restores ({skipped[0]}); is the checkpoint complete?')
