"""Training checkpoints (Orbax): the full train state, and beside it what inference needs.

Each step directory holds three items:
- 'state': the whole TrainState (G, D, both Adam states, EMA G, SN and BN
  state, step, RNG) — for exact resumption;
- 'ema_generator': the EMA G's variables with standing BN statistics —
  restorable on its own (`load_generator`), without D or optimiser state;
- 'meta': JSON with the model config and the data position.
"""

import jax
from etils import epath
import orbax.checkpoint as ocp

from biggan_jax.checkpoints.errors import CheckpointError

ITEMS = ('state', 'ema_generator', 'meta')
TRAIN_KIND = 'biggan_jax.train'  # meta['kind'] of a training checkpoint.


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
  """Asynchronous save; call `mngr.wait_until_finished()` before exiting."""
  mngr.save(step, args=ocp.args.Composite(
      state=ocp.args.StandardSave(state),
      ema_generator=ocp.args.StandardSave(ema_generator),
      meta=ocp.args.JsonSave(meta)))


def restore_state(mngr: ocp.CheckpointManager, step: int, target):
  """Restores the TrainState at `step` into the shapes/shardings of `target`."""
  abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
  out = mngr.restore(step, args=ocp.args.Composite(
      state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()))
  return out['state'], out['meta']


def restore_ema_generator(directory: str, step: int | None = None):
  """(meta, variables) of the EMA generator, without D or optimiser state."""
  if not epath.Path(directory).is_dir():
    raise CheckpointError(f'{directory}: no such checkpoint directory')
  mngr = manager(directory, read_only=True)
  step = mngr.latest_step() if step is None else step
  if step is None:
    raise CheckpointError(f'{directory}: no checkpoint in it (was the run saved?)')
  # A pod's checkpoint names devices this machine lacks: restore onto one local
  # device when the saved sharding cannot be rebuilt here.
  local = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
  out = mngr.restore(step, args=ocp.args.Composite(
      ema_generator=ocp.args.StandardRestore(fallback_sharding=local),
      meta=ocp.args.JsonRestore()))
  return out['meta'], out['ema_generator']
