"""Times checkpoint checksums and the per-step finiteness flag at the ImageNet-128 model's size.

  python benchmarks/checkpoint_integrity.py [--config=configs/imagenet128.py] [--repeats=3]

The TrainState of the config (G 70.4M + D 88.0M parameters at 128/ch96, their
Adam moments, the EMA G: about 546M values, 2.2 GB) is built from
`jax.eval_shape` and filled with random values (initialising the model for
real is slow on CPU; neither cost depends on the values), on the first
device. Timed, each the median of --repeats after one untimed call:
- checksums: `checkpoints/integrity.checksums` of the state and of the EMA G,
  what every save adds (and every restore, to verify);
- all_finite: `training/faults.all_finite` of the state, jitted alone (inside
  the train step XLA fuses it with the update that produces the state);
- save: an Orbax save of the same state and EMA G through
  `checkpoints/run_checkpoints.save` into a temporary folder, waited for;
- restore: `checkpoints/run_checkpoints.restore_state` of it, which verifies.
It prints one row of the table in benchmarks/README.md.
"""

import argparse
import shutil
import tempfile

import jax
import jax.numpy as jnp
import numpy as np

import timing  # benchmarks/timing.py, beside this file
from biggan_jax import config as config_lib
from biggan_jax import models
from biggan_jax.checkpoints import integrity
from biggan_jax.checkpoints import run_checkpoints
from biggan_jax.training import faults
from biggan_jax.training import state as train_state


def random_state(config):
  g, d = models.create_generator(config.model), models.create_discriminator(config.model)
  shapes = jax.eval_shape(lambda k: train_state.create(config, g, d, k), jax.random.PRNGKey(0))
  rng = np.random.default_rng(0)

  def fill(s):
    if jnp.issubdtype(s.dtype, jnp.floating):
      return jnp.asarray(rng.standard_normal(s.shape, np.float32).astype(s.dtype))
    return jnp.zeros(s.shape, s.dtype)
  return jax.tree.map(fill, shapes)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--config', default='configs/imagenet128.py')
  parser.add_argument('--repeats', type=int, default=3)
  args = parser.parse_args()
  config = config_lib.from_file(args.config)
  state = random_state(config)
  ema = {'params': state.ema_params, **state.ema_state}
  n = sum(x.size for x in jax.tree.leaves(state))
  n_params = sum(x.size for x in jax.tree.leaves((state.g_params, state.d_params)))
  device = f'{jax.devices()[0].device_kind} ({jax.devices()[0].platform})'
  print(f'{device}: {args.config}, {n_params / 1e6:.1f}M parameters, {n / 1e6:.0f}M values '
        f'in the state ({4 * n / 2**30:.2f} GiB)', flush=True)
  finite = jax.jit(faults.all_finite)
  t_sums = timing.median_seconds(
      lambda: (integrity.checksums(state), integrity.checksums(ema)), args.repeats, 1)
  print(f'checksums {t_sums:.2f} s', flush=True)  # each as it comes: a later step may run out of memory
  t_finite = timing.median_seconds(lambda: jax.block_until_ready(finite(state)), args.repeats, 1)
  print(f'all_finite {t_finite * 1e3:.0f} ms', flush=True)
  folder = tempfile.mkdtemp()
  try:
    step = [0]

    def save():
      step[0] += 1
      mngr = run_checkpoints.manager(f'{folder}/c{step[0]}', max_to_keep=1)
      run_checkpoints.save(mngr, 1, state, ema, {'step': 1})
      mngr.wait_until_finished()
      return mngr
    t_save = timing.median_seconds(save, args.repeats, 1)
    print(f'save {t_save:.1f} s', flush=True)
    mngr = run_checkpoints.manager(f'{folder}/c{step[0]}', read_only=True)
    t_restore = timing.median_seconds(lambda: jax.block_until_ready(run_checkpoints.restore_state(mngr, 1, state)),
                      args.repeats, 1)
  finally:
    shutil.rmtree(folder)
  print(f'| {device} | {t_sums:.2f} | {100 * t_sums / t_save:.1f} | {t_finite * 1e3:.0f} | '
        f'{t_save:.1f} | {t_restore:.1f} | {jax.__version__} |')


if __name__ == '__main__':
  main()
