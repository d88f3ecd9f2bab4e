"""The paper's σ0 remedies (Brock et al. 2019, Sec. 4.1 and App. F), as options.

Sec. 4.1 finds that G collapses when the top singular value σ0 of some
weights (the first linear especially) grows and explodes, and tries two
direct counter-measures on every weight W (the raw weight, before spectral
normalisation, in the (out, in) view of training/regularizers.py; G's
shared class embedding is left out, as for orthogonal regularisation):
- a penalty pulling σ0 toward a target: γ Σ_W (σ0(W) − target)², added to
  the network's loss (`sigma0_penalty` = γ; its gradient is
  2γ(σ0 − target) u0 v0ᵀ, since dσ0/dW = u0 v0ᵀ for a simple σ0);
- a clamp after each update through the partial SVD,
  W ← W − max(0, σ0 − target) u0 v0ᵀ (`sigma0_clamp`), which leaves every
  other singular value and vector of W as it was.
The target is either a fixed σ_reg (`sigma0_target` > 0) or r·sg(σ1)
(`sigma0_target` = 0, r = `sigma0_ratio`), sg the stop-gradient so that the
penalty cannot raise σ1. The paper reports that both keep σ0 (or σ0/σ1)
from exploding, with or without spectral norm, but that none prevents
collapse; they are here to reproduce that and to experiment.

σ0, σ1, u0 and v0 come from the tracker's Lanczos (spectral.top_singular_pair),
once per update for each remedy switched on: each costs about one
singular-value tracking of the networks it applies to, every step.
"""

import jax
import jax.numpy as jnp

from biggan_jax.training import regularizers, spectral

EXCLUDE = ('shared',)
NETS = ('G', 'D')


def nets(config) -> tuple[str, ...]:
  """The networks the remedies apply to, from config.sigma0_nets ('G', 'D' or 'G,D')."""
  return tuple(n.strip() for n in str(config.sigma0_nets).split(',') if n.strip())


def target(sigma1: jax.Array, config) -> jax.Array:
  """σ_reg when sigma0_target > 0, else r·sg(σ1)."""
  if config.sigma0_target > 0:
    return jnp.asarray(config.sigma0_target, jnp.float32)
  return config.sigma0_ratio * jax.lax.stop_gradient(sigma1)


def penalty(params, config) -> jax.Array:
  """Σ_W (σ0(W) − target)², without the weight γ; differentiable in `params`.

  σ0 is written u0ᵀ W v0 with the singular vectors held fixed, whose gradient
  is the exact u0 v0ᵀ.
  """
  total = jnp.zeros((), jnp.float32)
  for w in regularizers.weight_matrices(params, EXCLUDE).values():
    _, s1, u0, v0 = spectral.top_singular_pair(w)
    sigma0 = jnp.dot(u0, jnp.matmul(w.astype(jnp.float32), v0))
    total += jnp.square(sigma0 - target(s1, config))
  return total


def clamp(params, config):
  """`params` with σ0 of every weight lowered to the target where it is above it."""
  def clamp_one(name, w):
    del name
    s0, s1, u0, v0 = spectral.top_singular_pair(w)
    excess = jnp.maximum(s0 - target(s1, config), 0.0)
    return (w - (excess * jnp.outer(u0, v0)).astype(w.dtype))
  return regularizers.map_weight_matrices(clamp_one, params, EXCLUDE)


def add_penalty(grads, params, config, net: str, metrics: dict):
  """`grads` plus γ ∇penalty when sigma0_penalty > 0 applies to `net` ('G' or 'D')."""
  if not (config.sigma0_penalty > 0 and net in nets(config)):
    return grads
  value, pen_grads = jax.value_and_grad(penalty)(params, config)
  metrics['sigma0_penalty'] = value
  return jax.tree.map(lambda g, p: g + config.sigma0_penalty * p, grads, pen_grads)


def after_update(params, config, net: str):
  """The clamp, when sigma0_clamp is on for `net`; `params` unchanged otherwise."""
  if config.sigma0_clamp and net in nets(config):
    return clamp(params, config)
  return params
