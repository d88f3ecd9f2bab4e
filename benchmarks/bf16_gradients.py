"""How far bfloat16 compute moves a trained BigGAN's gradients from float32's, per network.

    python benchmarks/bf16_gradients.py --config=configs/digits.py --workdir=runs/digits \\
      [--batches=4]

Restores the run's newest TrainState (float32 parameters, as every run keeps them)
and, on --batches real batches of its dataset with fresh z and y, computes D's
and G's loss gradients exactly as training/step.py's d_loss_fn / g_loss_fn do,
with G and D built in each compute dtype in turn (G/D: float32/float32 is the
reference). For each policy it prints the gradient's error relative to float32's,
||g - g_f32|| / ||g_f32|| over the whole network, the cosine, the same for D's
logits and G's images, which modules hold most of the error, and whether it
repeats from batch to batch. The yardstick beside it is what another batch does:
the same relative difference between float32 gradients of two different batches,
the noise SGD already trains through. Why a gradient study:
a training run per policy costs 13 minutes here and its FID moves by the seed's
spread; a gradient shows where the rounding enters in seconds.
"""

import functools
import os
import sys

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import numpy as np
from ml_collections import config_flags

from biggan_jax import models
from biggan_jax.checkpoints import run_checkpoints
from biggan_jax.data import pipeline
from biggan_jax.training import state as train_state
from biggan_jax.training import step as step_lib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_CONFIG = config_flags.DEFINE_config_file(
    'config', os.path.join(REPO, 'configs', 'digits.py'),
    'The run\'s configs/*.py file (with the same --config.<key>=<value> overrides).')
_WORKDIR = flags.DEFINE_string('workdir', None, 'A float32 run\'s workdir (its newest checkpoint).')
_BATCHES = flags.DEFINE_integer('batches', 4, 'Real batches averaged over.')

POLICIES = (('float32', 'bfloat16'), ('bfloat16', 'float32'), ('bfloat16', 'bfloat16'))


def gradients(config, state, batch, rng, g_dtype, d_dtype):
  """(D's gradient, G's gradient, D's logits on [fake; real], G's images) in these dtypes."""
  generator = models.create_generator(config.model).clone(dtype=jnp.dtype(g_dtype))
  discriminator = models.create_discriminator(config.model).clone(dtype=jnp.dtype(d_dtype))
  context = dict(config=config, generator=generator, discriminator=discriminator)
  mutables = (state.g_state, state.d_state)
  x = step_lib.to_float(jnp.asarray(batch['image'][0, 0]))
  y = jnp.asarray(batch['label'][0, 0])
  kz, ky, ka = jax.random.split(rng, 3)
  z = jax.random.normal(kz, (len(y), config.model.dim_z))
  y_fake = jax.random.randint(ky, y.shape, 0, config.model.num_classes)
  d_grad = jax.grad(functools.partial(
      step_lib.d_loss_fn, **context, g_params=state.g_params, p=None, r1_due=False),
      has_aux=True)(state.d_params, mutables, x, y, z, y_fake, ka)[0]
  g_grad = jax.grad(functools.partial(
      step_lib.g_loss_fn, **context, d_params=state.d_params, p=None),
      has_aux=True)(state.g_params, mutables, z, y_fake, ka)[0]
  fake = generator.apply({'params': state.g_params, **state.g_state}, z, y_fake, train=False)
  logits = discriminator.apply({'params': state.d_params, **state.d_state},
                               jnp.concatenate([fake, x]), jnp.concatenate([y_fake, y]),
                               train=False)
  return d_grad, g_grad, logits, fake


def _flat(tree):
  return jnp.concatenate([jnp.ravel(v).astype(jnp.float32) for v in jax.tree.leaves(tree)])


def relative_error(a, b) -> float:
  """||a - b|| / ||b|| over all leaves."""
  a, b = _flat(a), _flat(b)
  return float(jnp.linalg.norm(a - b) / jnp.linalg.norm(b))


def cosine(a, b) -> float:
  a, b = _flat(a), _flat(b)
  return float(jnp.dot(a, b) / (jnp.linalg.norm(a) * jnp.linalg.norm(b)))


def error_shares(a, b) -> str:
  """Where the error lies: each module's share of ||a - b||^2, the two largest."""
  shares = {}
  for (path, x), y in zip(jax.tree_util.tree_leaves_with_path(a), jax.tree.leaves(b)):
    module = str(path[0].key)
    shares[module] = shares.get(module, 0.0) + float(jnp.sum(jnp.square(
        x.astype(jnp.float32) - y.astype(jnp.float32))))
  total = sum(shares.values()) or 1.0
  top = sorted(shares, key=shares.get, reverse=True)[:2]
  return ', '.join(f'{m} {shares[m] / total:.0%}' for m in top)


def main(argv):
  if len(argv) > 1 or not _WORKDIR.value:
    sys.exit('error: give --workdir=RUN (a trained run) and no positional arguments')
  config = _CONFIG.value
  generator = models.create_generator(config.model)
  discriminator = models.create_discriminator(config.model)
  target = train_state.create(config, generator, discriminator, jax.random.PRNGKey(0))
  mngr = run_checkpoints.manager(os.path.join(_WORKDIR.value, 'checkpoints'), read_only=True)
  restored = run_checkpoints.restore_newest(mngr, target)
  if restored is None:
    sys.exit(f'error: {_WORKDIR.value}/checkpoints holds no checkpoint; train first')
  step, state, _ = restored
  batches = pipeline.create(config, step)
  fn = jax.jit(functools.partial(gradients, config), static_argnums=(3, 4))
  rows = {p: [] for p in (('float32', 'float32'),) + POLICIES}
  errors = {p: ([], []) for p in POLICIES}  # each batch's (D, G) gradient error vectors
  refs = []
  for i in range(_BATCHES.value):
    batch, rng = next(batches), jax.random.PRNGKey(1000 + i)
    ref = fn(state, batch, rng, 'float32', 'float32')
    if refs:  # the yardstick: the previous batch's float32 gradients against this one's.
      rows[('float32', 'float32')].append(
          (relative_error(refs[-1][0], ref[0]), relative_error(refs[-1][1], ref[1]),
           cosine(refs[-1][0], ref[0]), cosine(refs[-1][1], ref[1]), 0.0, 0.0, '', ''))
    refs.append(ref)
    for policy in POLICIES:
      out = fn(state, batch, rng, *policy)
      for k in (0, 1):
        errors[policy][k].append(np.asarray(_flat(out[k]) - _flat(ref[k])))
      rows[policy].append((
          relative_error(out[0], ref[0]), relative_error(out[1], ref[1]),
          cosine(out[0], ref[0]), cosine(out[1], ref[1]),
          relative_error(out[2], ref[2]), relative_error(out[3], ref[3]),
          error_shares(out[0], ref[0]), error_shares(out[1], ref[1])))
  print(f'{_WORKDIR.value} step {step}, {_BATCHES.value} batches of '
        f'{config.batch_size // config.num_accumulations}, {jax.devices()[0].device_kind}')
  print('| G / D compute | D grad rel. err | G grad rel. err | D grad cos | G grad cos | '
        'D logits rel. err | G images rel. err | D error lies in (batch 1) | '
        'G error lies in (batch 1) |')
  print('|---' * 9 + '|')
  for (g, d), values in rows.items():
    mean = np.mean([v[:6] for v in values], axis=0)
    label = 'float32 / float32, another batch' if (g, d) == ('float32', 'float32') else f'{g} / {d}'
    print(f'| {label} | ' + ' | '.join(f'{m:.4f}' for m in mean)
          + f' | {values[0][6] or "-"} | {values[0][7] or "-"} |')
  n = _BATCHES.value
  print(f'\nIs the error a bias or noise? ||mean over batches of the error|| / mean ||error||: '
        f'1 for a bias repeated every batch, 1/sqrt({n}) = {n ** -0.5:.2f} for noise.')
  print('| G / D compute | D gradient | G gradient |\n|---|---|---|')
  for (g, d), (d_err, g_err) in errors.items():
    ratio = [np.linalg.norm(np.mean(e, 0)) / np.mean([np.linalg.norm(v) for v in e])
             for e in (d_err, g_err)]
    print(f'| {g} / {d} | {ratio[0]:.2f} | {ratio[1]:.2f} |')


if __name__ == '__main__':
  app.run(main)

