"""Everything a BigGAN run carries from step to step, in one pytree.

`g_state` / `ema_state` hold G's 'batch_stats' and 'spectral' collections,
`d_state` D's 'spectral'; they are state, not parameters, and are updated by
every train-mode forward pass exactly as upstream's buffers are.
"""

from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax

from biggan_jax.training import augment, spectral


@flax.struct.dataclass
class TrainState:
  step: jax.Array             # number of G updates done
  rng: jax.Array              # base key; step keys are fold_in(rng, step)
  g_params: Any
  g_state: Any
  g_opt_state: Any
  d_params: Any
  d_state: Any
  d_opt_state: Any
  ema_params: Any
  ema_state: Any
  sv: Any                     # last tracked top singular values per weight
  ada: Any = None             # augment.AdaState with augment_adaptive (ADA's p), else None


def optimizers(config) -> tuple[optax.GradientTransformation, optax.GradientTransformation]:
  """Adam per network with its own lr and betas (paper: β1 = 0, β2 = 0.999)."""
  g_tx = optax.adam(config.lr_g, b1=config.b1_g, b2=config.b2_g, eps=config.eps_g)
  d_tx = optax.adam(config.lr_d, b1=config.b1_d, b2=config.b2_d, eps=config.eps_d)
  return g_tx, d_tx


def track_singular_values(g_params, d_params) -> dict:
  """σ0, σ1, σ2 of every weight of G ('G/...') and D ('D/...')."""
  out = {f'G/{k}': v for k, v in spectral.track(g_params).items()}
  out.update({f'D/{k}': v for k, v in spectral.track(d_params).items()})
  return out


def create(config, generator, discriminator, rng) -> TrainState:
  """A fresh state: initialised G and D, Adam states, EMA G = G."""
  m = config.model
  k_g, k_d, k_run = jax.random.split(rng, 3)
  z = jnp.zeros((2, m.dim_z), jnp.float32)
  y = jnp.zeros((2,), jnp.int32)
  x = jnp.zeros((2, m.resolution, m.resolution, 3), jnp.float32)
  g_vars = generator.init({'params': k_g}, z, y, train=False)
  d_vars = discriminator.init({'params': k_d}, x, y, train=False)
  g_params, g_state = _split(g_vars)
  d_params, d_state = _split(d_vars)
  g_tx, d_tx = optimizers(config)
  return TrainState(
      step=jnp.zeros((), jnp.int32), rng=k_run,
      g_params=g_params, g_state=g_state, g_opt_state=g_tx.init(g_params),
      d_params=d_params, d_state=d_state, d_opt_state=d_tx.init(d_params),
      ema_params=g_params, ema_state=g_state,
      sv=jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype),
                      jax.eval_shape(track_singular_values, g_params, d_params)),
      ada=augment.ada_init() if config.augment_adaptive else None)


def _split(variables):
  variables = dict(variables)
  params = variables.pop('params')
  return params, variables
