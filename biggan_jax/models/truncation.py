"""The two truncation conventions a BigGAN model can expect (meta's 'truncation_convention').

A property of the model, beside it in models/: the 'tfhub' convention's BN
statistics are model variables, and the converters and checkpoints name both.

- 'paper' (biggan_jax runs, BigGAN-PyTorch): the truncation trick of Brock et
  al. 2019, Sec. 3.1: z ~ N(0, I) with every value outside ±τ resampled, i.e.
  z ~ truncnorm(-τ, τ); the BN statistics do not depend on τ.
- 'tfhub' (TF-Hub, pytorch-pretrained-BigGAN): z = τ · truncnorm(-2, 2), and
  τ (0 < τ <= 1) also selects the BN statistics: every BN holds 51 sets, for
  τ = 0, 0.02, ..., 1 (`bn_stats_at`).
"""

import math

import jax
import jax.numpy as jnp
import numpy as np

CONVENTIONS = ('paper', 'tfhub')
BN_STATS_BY_TRUNCATION = 'batch_stats_by_truncation'  # the 'tfhub' convention's tables.


def check_truncation(truncation) -> None:
  """Raises ValueError unless `truncation` is None or a finite number > 0."""
  if truncation is None:
    return
  ok = isinstance(truncation, (int, float, np.floating, np.integer)) and not isinstance(
      truncation, bool)
  if not ok or not math.isfinite(truncation) or truncation <= 0:
    raise ValueError(f'truncation={truncation!r}: must be a number > 0 '
                     '(smaller: higher fidelity, less variety; None: no truncation)')


def truncated_z(rng, n: int, dim_z: int, truncation: float | None = None) -> jax.Array:
  """(n, dim_z) latents with the paper's truncation trick (Sec. 3.1).

  Values of z ~ N(0, I) outside [-τ, τ] are resampled until they fall inside,
  which is exactly the normal distribution truncated to [-τ, τ]. None: plain
  N(0, I).
  """
  if truncation is None:
    return jax.random.normal(rng, (n, dim_z), jnp.float32)
  check_truncation(truncation)
  t = float(truncation)
  return jax.random.truncated_normal(rng, -t, t, (n, dim_z), jnp.float32)


def tfhub_z(rng, n: int, dim_z: int, truncation: float) -> jax.Array:
  """TF-Hub's and pytorch-pretrained-BigGAN's latents: τ · truncnorm(-2, 2)."""
  return truncation * jax.random.truncated_normal(rng, -2.0, 2.0, (n, dim_z), jnp.float32)


def bn_stats_at(table, truncation: float):
  """The BN statistics for `truncation` from (n_stats, C) tables, as the source does it.

  pytorch-pretrained-BigGAN (BigGANBatchNorm.forward): coef, start =
  modf(τ / step) with step = 1 / (n_stats - 1); stats = s[start] · coef +
  s[start + 1] · (1 - coef) when coef != 0, else s[start]. The weights are the
  reverse of linear interpolation, and float rounding moves some grid values:
  τ = 0.14 gives 0.14 / 0.02 = 7.000000000000001, i.e. the stats of τ = 0.16,
  and τ = 0.58 those of 0.56. Reproduced as is, in Python floats, because
  that is what the source models sample with.
  """
  leaves = jax.tree.leaves(table)
  n_stats = leaves[0].shape[0]
  coef, start = math.modf(float(truncation) / (1.0 / (n_stats - 1)))
  start = int(start)

  def pick(t):
    t = np.asarray(t, np.float32)
    if coef == 0.0:
      return t[start]
    return t[start] * np.float32(coef) + t[start + 1] * np.float32(1 - coef)

  return jax.tree.map(pick, table)
