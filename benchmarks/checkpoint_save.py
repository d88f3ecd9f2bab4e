"""Times a training checkpoint's save with the state replicated over the local devices,
with biggan_jax's replica-parallel threshold and with Orbax's default, in one process.

  XLA_FLAGS=--xla_force_host_platform_device_count=8 JAX_PLATFORMS=cpu \\
    python benchmarks/checkpoint_save.py [--config=configs/digits.py] [--repeats=3]

Orbax writes a replicated array "replica-parallel": each replica writes its own
slice, one device transfer per slice. checkpoints/run_checkpoints.py writes
arrays of under MIN_SLICE_BYTES per slice whole from one replica instead. The
state of --config (its real initial values, laid out by training/sharded_step.py
as a run lays it out: replicated, or FSDP with --config.fsdp) and its EMA G are
saved through `run_checkpoints.save` and waited for: the first save of a
process (what a run's first checkpoint costs, Orbax's per-shape work included)
and the median of --repeats more, under each handler. Prints the row of
benchmarks/README.md's "Checkpoint saves" table.
"""

import argparse
import shutil
import tempfile
import time

import jax
import numpy as np
import orbax.checkpoint as ocp

from biggan_jax import config as config_lib
from biggan_jax.checkpoints import run_checkpoints
from biggan_jax.training import sharded_step


def use_handler(min_slice_bytes):
  """Registers Orbax's ArrayHandler with this threshold (None: Orbax's default)."""
  handler = ocp.type_handlers.ArrayHandler(min_slice_bytes_for_replica_parallel=min_slice_bytes)
  ocp.type_handlers.register_type_handler(jax.Array, handler, override=True)


def time_store(state, ema, folder, repeats, restore=False):
  """(first save s, median of the next `repeats` saves s), each into a fresh folder;
  with `restore` also (first restore s, median restore s) of what each save wrote.
  checkpoint_gcs.py times a bucket beside local disk with it."""
  saves, restores = [], []
  for i in range(repeats + 1):
    mngr = run_checkpoints.manager(f'{folder}/c{i}', max_to_keep=1)
    start = time.perf_counter()
    run_checkpoints.save(mngr, 1, state, ema, {'step': 1})
    mngr.wait_until_finished()
    saves.append(time.perf_counter() - start)
    if restore:
      reader = run_checkpoints.manager(f'{folder}/c{i}', read_only=True)
      start = time.perf_counter()
      jax.block_until_ready(run_checkpoints.restore_state(reader, 1, state)[0])
      restores.append(time.perf_counter() - start)
  first_and_median = lambda t: (t[0], float(np.median(t[1:])))
  return first_and_median(saves) + (first_and_median(restores) if restore else ())


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--config', default='configs/digits.py')
  parser.add_argument('--repeats', type=int, default=3)
  args = parser.parse_args()
  config = config_lib.from_file(args.config)
  train = sharded_step.build(config)
  state = train.init(jax.random.PRNGKey(0))
  ema = {'params': state.ema_params, **state.ema_state}
  devices = jax.local_devices()
  n_bytes = sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(state))
  device = f'{len(devices)} x {devices[0].device_kind} ({devices[0].platform})'
  print(f'{device}: {args.config}, state {n_bytes / 2**20:.1f} MiB in '
        f'{len(jax.tree.leaves(state))} arrays', flush=True)
  results = {}
  folder = tempfile.mkdtemp()
  try:
    # The threshold first: the process's first save pays Orbax's and TensorStore's set-up,
    # so the comparison leans, if at all, in the default's favour.
    for name, threshold in (('biggan_jax', run_checkpoints.MIN_SLICE_BYTES), ('orbax', None)):
      use_handler(threshold)
      results[name] = time_store(state, ema, f'{folder}/{name}', args.repeats)
      print(f'{name}: first save {results[name][0]:.2f} s, then {results[name][1]:.2f} s',
            flush=True)
  finally:
    shutil.rmtree(folder)
    use_handler(run_checkpoints.MIN_SLICE_BYTES)
  (o1, o2), (b1, b2) = results['orbax'], results['biggan_jax']
  print(f'| {args.config} | {device} | {n_bytes / 2**20:.1f} | {o1:.2f} / {o2:.2f} | '
        f'{b1:.2f} / {b2:.2f} | {o2 / b2:.1f}x | {jax.__version__} |')


if __name__ == '__main__':
  main()
