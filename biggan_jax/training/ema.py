"""EMA of G's weights and standing statistics (Brock et al. 2019, Sec. 3; App. C).

Upstream averages the whole state dict, buffers included, with decay 0 before
`ema_start`; its BN statistics are then re-estimated ("standing statistics")
by averaging batch statistics over several train-mode passes.
"""

import jax
import jax.numpy as jnp


def update(ema_tree, tree, step, decay: float, start: int):
  """EMA step; decay is 0 before `start`, so the EMA copies G until then."""
  d = jnp.where(step >= start, decay, 0.0)
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
