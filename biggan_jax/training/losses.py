"""GAN losses on discriminator logits, and the R1 gradient penalty.

The paper trains with the hinge loss (Brock et al. 2019, Sec. 3; Lim & Ye
2017, Tran et al. 2017), as BigGAN-PyTorch's `losses.loss_hinge_dis/gen`;
the non-saturating and Wasserstein losses are the usual alternatives. The
names here are those of `config.loss`.
"""

import jax
import jax.numpy as jnp

from biggan_jax.config import LOSSES

Array = jax.Array


def _check(kind: str) -> None:
  if kind not in LOSSES:
    raise ValueError(f'loss={kind!r}: use one of {", ".join(map(repr, LOSSES))}')


def d_loss(kind: str, real_logits: Array, fake_logits: Array) -> tuple[Array, Array]:
  """D's loss on real and on generated samples, (loss_real, loss_fake).

  L_D = loss_real + loss_fake; they are returned apart because upstream logs
  them apart (D_loss_real, D_loss_fake). Logits are D's (N,) outputs.
  """
  _check(kind)
  if kind == 'hinge':
    return jnp.mean(jax.nn.relu(1.0 - real_logits)), jnp.mean(jax.nn.relu(1.0 + fake_logits))
  if kind == 'non_saturating':
    return jnp.mean(jax.nn.softplus(-real_logits)), jnp.mean(jax.nn.softplus(fake_logits))
  return -jnp.mean(real_logits), jnp.mean(fake_logits)


def g_loss(kind: str, fake_logits: Array) -> Array:
  """G's loss on D's logits for generated samples."""
  _check(kind)
  if kind == 'non_saturating':
    return jnp.mean(jax.nn.softplus(-fake_logits))
  return -jnp.mean(fake_logits)


def mode_seeking(fake: Array, z: Array, eps: float = 1e-5) -> Array:
  """MSGAN's mode-seeking term (Mao et al. 2019), to be minimised by G.

  The batch's two halves share classes and differ in z; G is rewarded for
  images that differ as much as their latents do: 1 / (mean|x1 - x2| /
  mean|z1 - z2| + eps), as the authors' code. Against the class-conditional
  collapse where G ignores z (the digits demo's failure mode).
  """
  x1, x2 = jnp.split(fake.astype(jnp.float32), 2)
  z1, z2 = jnp.split(z.astype(jnp.float32), 2)
  ratio = jnp.mean(jnp.abs(x1 - x2)) / jnp.mean(jnp.abs(z1 - z2))
  return 1.0 / (ratio + eps)


def r1_penalty(d_fn, x: Array) -> Array:
  """Mean over the batch of ‖∇ₓ D(x)‖², per sample (Mescheder et al. 2018).

  `d_fn` maps x (N, ...) to logits (N,); the gradient of the summed logits
  is each sample's own gradient because samples do not interact in D (true
  of BigGAN's D in any mode: it has no batch norm). The zero-centred penalty
  is (γ/2)·r1 on real data, and the γ/2 is left to the train step, which
  adds `0.5 * r1_gamma * r1_penalty(...)` to D's loss. The paper (Sec. 4.2)
  tries it on D with γ = 10: training becomes stable, samples get worse.
  """
  grad = jax.grad(lambda x_: jnp.sum(d_fn(x_)))(x)
  grad = grad.astype(jnp.float32)
  return jnp.mean(jnp.sum(jnp.square(grad.reshape(grad.shape[0], -1)), axis=1))
