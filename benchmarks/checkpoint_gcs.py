"""Times a training checkpoint's save and restore on local disk and on gs:// (the GCS
emulator, tests/gcs_fixture.py), in one process.

  JAX_PLATFORMS=cpu python benchmarks/checkpoint_gcs.py [--config=configs/imagenet128.py]

The state of --config (its shapes and dtypes from the real init, on one device,
filled with random values: weights do not compress) and its EMA G are saved
through `run_checkpoints.save` and waited for, then restored and verified with
`run_checkpoints.restore_state`: the first save and restore of each store and
the median of --repeats more. The emulator is fake-gcs-server over loopback
HTTP with its filesystem backend: it measures the client side (gcsfs,
TensorStore's GCS driver, one HTTP request per object) on this machine, not a
real bucket's throughput. Prints the row of benchmarks/README.md's
"Checkpoints on gs://" table.
"""

import argparse
import os
import pathlib
import shutil
import sys
import tempfile

import jax
import numpy as np

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / 'tests'))


def random_like(tree, seed=0):
  rng = np.random.default_rng(seed)

  def fill(x):
    if np.issubdtype(x.dtype, np.floating):
      return jax.numpy.asarray(rng.standard_normal(x.shape, dtype=np.float32).astype(x.dtype))
    return jax.numpy.zeros(x.shape, x.dtype)
  return jax.tree.map(fill, tree)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--config', default='configs/imagenet128.py')
  parser.add_argument('--repeats', type=int, default=2)
  args = parser.parse_args()
  import checkpoint_save
  import gcs_fixture
  from biggan_jax import config as config_lib
  from biggan_jax.training import sharded_step
  config = config_lib.from_file(args.config)
  train = sharded_step.build(config)
  state = random_like(jax.eval_shape(train.init, jax.random.PRNGKey(0)))
  ema = {'params': state.ema_params, **state.ema_state}
  n_bytes = sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(state))
  device = f'{jax.device_count()} x {jax.devices()[0].device_kind}'
  print(f'{device}: {args.config}, state {n_bytes / 2**20:.0f} MiB in '
        f'{len(jax.tree.leaves(state))} arrays', flush=True)
  scratch = tempfile.mkdtemp()
  emulator = gcs_fixture.Emulator(f'{scratch}/gcs').start()
  os.environ.update(emulator.env)
  results = {}
  try:
    for name, folder in (('local', f'{scratch}/local'),
                         ('gs://', emulator.bucket('bench') + '/run')):
      results[name] = checkpoint_save.time_store(state, ema, folder, args.repeats, restore=True)
      print(f'{name}: save {results[name][0]:.1f} s first, then {results[name][1]:.1f} s; '
            f'restore {results[name][2]:.1f} s first, then {results[name][3]:.1f} s', flush=True)
  finally:
    emulator.stop()
    shutil.rmtree(scratch)
  (ls1, ls2, lr1, lr2), (gs1, gs2, gr1, gr2) = results['local'], results['gs://']
  print(f'| {args.config} | {device} | {n_bytes / 2**20:.0f} | {ls1:.1f} / {ls2:.1f} | '
        f'{lr1:.1f} / {lr2:.1f} | {gs1:.1f} / {gs2:.1f} | {gr1:.1f} / {gr2:.1f} | '
        f'{jax.__version__} |')


if __name__ == '__main__':
  main()
