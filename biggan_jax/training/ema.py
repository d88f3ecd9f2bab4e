"""EMA of G's weights and standing statistics (Brock et al. 2019, Sec. 3; App. C).

Upstream averages the whole state dict, buffers included, with decay 0 before
`ema_start`; its BN statistics are then re-estimated ("standing statistics")
by averaging batch statistics over several train-mode passes.

`decay` also offers StyleGAN2-ADA's schedule (training_loop.py, ema_kimg and
ema_rampup): a half-life in images rather than a per-step decay, optionally
ramped up with training so that the early EMA follows G closely.
"""

import math

import jax
import jax.numpy as jnp


def half_life_images(config) -> float:
  """The EMA's half-life in G's images: ema_kimg, or that of ema_decay at batch_size."""
  if config.ema_kimg:
    return config.ema_kimg * 1000.0
  if config.ema_decay == 0:
    return 0.0
  return config.batch_size * math.log(0.5) / math.log(config.ema_decay)


def decay(config, step):
  """The EMA decay of G update `step` (0-based, before the update).

  The paper's constant ema_decay unless ema_kimg or ema_rampup is set; then
  StyleGAN2-ADA's: ema_nimg = min(half-life, cur_nimg * ema_rampup) and
  beta = 0.5 ** (batch / ema_nimg), with cur_nimg = step * batch_size, the
  images G has made so far (one EMA update per G step, as there; D sees
  num_d_steps times as many real images). At ema_decay's own half-life and
  no ramp-up this is ema_decay again.
  """
  if not (config.ema_kimg or config.ema_rampup):
    return config.ema_decay
  ema_nimg = jnp.float32(half_life_images(config))
  if config.ema_rampup:
    cur_nimg = jnp.asarray(step, jnp.float32) * config.batch_size
    ema_nimg = jnp.minimum(ema_nimg, cur_nimg * config.ema_rampup)
  return 0.5 ** (config.batch_size / jnp.maximum(ema_nimg, 1e-8))


def update(ema_tree, tree, iteration, decay: float, start: int):
  """EMA step after G update `iteration`, counted from 1 as BigGAN-PyTorch's train.py
  counts `itr` (incremented before each iteration; utils.ema.update(itr)): decay 0,
  a copy of G, while iteration < `start`, then `decay`."""
  d = jnp.where(iteration >= start, decay, 0.0)
  return jax.tree.map(lambda e, p: (d * e + (1.0 - d) * p).astype(e.dtype),
                      ema_tree, tree)


def standing_stats(generator, variables, rng, *, num_passes: int, batch_size: int,
                   dim_z: int, num_classes: int, truncation: float | None = None):
  """Re-estimates every BN's running mean/var of `generator`.

  Each pass runs G in train mode on fresh z, y with BN momentum 1 (so the
  stored stats become that batch's mean and unbiased variance); the results
  are averaged over passes. SN vectors are left as they were. Returns the
  variables with the new 'batch_stats'.
  """
  one_shot = generator.clone(bn_momentum=1.0)

  def one_pass(key):
    kz, ky = jax.random.split(key)
    z = jax.random.normal(kz, (batch_size, dim_z))
    if truncation is not None:
      z = jax.random.truncated_normal(kz, -truncation, truncation, (batch_size, dim_z))
    y = jax.random.randint(ky, (batch_size,), 0, num_classes)
    _, state = one_shot.apply(variables, z, y, train=True,
                              mutable=['batch_stats', 'spectral'])
    return state['batch_stats']

  stats = jax.lax.map(one_pass, jax.random.split(rng, num_passes))
  return {**variables, 'batch_stats': jax.tree.map(lambda s: s.mean(0), stats)}
