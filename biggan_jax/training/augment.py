"""Differentiable augmentation of D's inputs (DiffAugment; Zhao et al. 2020).

With little data D memorises the training images and G collapses onto them
(one image per class on the 1,797 digits). DiffAugment applies the same
family of random, differentiable transforms to real and to generated images
before D, so D never sees an un-augmented image and G's gradient flows
through the transform (Zhao et al. 2020, Sec. 3; "translation,cutout" is their
low-data default, "color" adds brightness/saturation/contrast).

`policy` is a comma-separated list of 'color', 'translation', 'cutout'
('' = identity). Each image of the batch draws its own parameters. Shapes:
x (N, H, W, C) in [-1, 1] (NHWC, unlike the reference's NCHW).

Adaptive strength (ADA; Karras et al. 2020, "Training Generative Adversarial
Networks with Limited Data", Sec. 3, and stylegan2-ada-pytorch's
training_loop.py): with a probability p, each transform (brightness,
saturation, contrast, translation, cutout) is applied to each image on its
own, and p follows the overfitting heuristic r_t = E[sign(D(x_real))]: every
ada_interval steps p moves by ±(real images seen) / (ada_kimg * 1000) toward
r_t = ada_target, clamped at 0 only, as there (p >= 1 applies every op).
"""

import flax
import jax
import jax.numpy as jnp

from biggan_jax import config as config_lib

_GATES = 0x0ADA  # fold_in stream of the gates: split(rng, n) children are fold_in(rng, i < n).


def _per_image(rng, x):
  return jax.random.uniform(rng, (x.shape[0], 1, 1, 1), x.dtype)


def brightness(x, rng):
  return x + (_per_image(rng, x) - 0.5)


def saturation(x, rng):
  mean = x.mean(axis=3, keepdims=True)
  return (x - mean) * (_per_image(rng, x) * 2) + mean


def contrast(x, rng):
  mean = x.mean(axis=(1, 2, 3), keepdims=True)
  return (x - mean) * (_per_image(rng, x) + 0.5) + mean


def color(x, rng):
  """Brightness ±0.5, saturation x[0, 2], contrast x[0.5, 1.5] per image (reference ranges)."""
  kb, ks, kc = jax.random.split(rng, 3)
  return contrast(saturation(brightness(x, kb), ks), kc)


def translation(x, rng, ratio: float = 0.125):
  """Shifts each image by up to ratio*size pixels in x and y, filling with zeros."""
  n, h, w, _ = x.shape
  sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
  ky, kx = jax.random.split(rng)
  ty = jax.random.randint(ky, (n, 1, 1), -sh, sh + 1)
  tx = jax.random.randint(kx, (n, 1, 1), -sw, sw + 1)
  iy = jnp.arange(h)[None, :, None] - ty          # source row of each output row
  ix = jnp.arange(w)[None, None, :] - tx
  valid = (iy >= 0) & (iy < h) & (ix >= 0) & (ix < w)
  gathered = x[jnp.arange(n)[:, None, None], jnp.clip(iy, 0, h - 1), jnp.clip(ix, 0, w - 1)]
  return jnp.where(valid[..., None], gathered, 0.0).astype(x.dtype)


def cutout(x, rng, ratio: float = 0.5):
  """Zeroes one ratio*size square per image at a random centre (may hang off the edge)."""
  n, h, w, _ = x.shape
  ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
  ky, kx = jax.random.split(rng)
  cy = jax.random.randint(ky, (n, 1, 1), 0, h + (1 - ch % 2))
  cx = jax.random.randint(kx, (n, 1, 1), 0, w + (1 - cw % 2))
  yy = jnp.arange(h)[None, :, None]
  xx = jnp.arange(w)[None, None, :]
  inside = ((yy >= cy - ch // 2) & (yy < cy - ch // 2 + ch) &
            (xx >= cx - cw // 2) & (xx < cx - cw // 2 + cw))
  return jnp.where(inside[..., None], 0.0, x).astype(x.dtype)


_FNS = {'color': color, 'translation': translation, 'cutout': cutout}
_OPS = {'color': (brightness, saturation, contrast), 'translation': (translation,),
        'cutout': (cutout,)}  # the transforms ADA gates one by one


def diff_augment(x, rng, policy: str, p=None):
  """Applies `policy`'s transforms in order; identity for ''.

  `p` (ADA): each transform is applied to each image with probability p (the
  same draws as without p where it is applied); None applies all of them.
  """
  names = config_lib.augmentations(policy)
  keys = jax.random.split(rng, max(len(names), 1))
  if p is None:
    for name, key in zip(names, keys):
      x = _FNS[name](x, key)
    return x
  num_ops = sum(len(_OPS[name]) for name in names)
  gates = iter(jax.random.uniform(jax.random.fold_in(rng, _GATES), (num_ops, x.shape[0])) < p)
  for name, key in zip(names, keys):
    ops = _OPS[name]
    for op, op_key in zip(ops, jax.random.split(key, 3) if len(ops) > 1 else (key,)):
      x = jnp.where(next(gates)[:, None, None, None], op(x, op_key), x)
  return x


@flax.struct.dataclass
class AdaState:
  """ADA's p and what r_t is averaged from since p last moved (ada_stats there)."""
  p: jax.Array         # probability of each transform per image
  sign_sum: jax.Array  # Σ over D steps of mean(sign(D(x_real)))
  count: jax.Array     # D steps in sign_sum


def ada_init() -> AdaState:
  return AdaState(p=jnp.zeros((), jnp.float32), sign_sum=jnp.zeros((), jnp.float32),
                  count=jnp.zeros((), jnp.float32))


def ada_update(ada: AdaState, signs, step, config) -> AdaState:
  """Adds one step's D-step means of sign(D(x_real)) (`signs`, (num_d_steps,));
  after every ada_interval-th step (`step`: G steps done) moves p by
  sign(r_t - ada_target) * (real images in the interval) / (ada_kimg * 1000)."""
  sign_sum, count = ada.sign_sum + jnp.sum(signs), ada.count + jnp.size(signs)
  due = step % config.ada_interval == 0
  images = config.batch_size * config.num_d_steps * config.ada_interval
  adjust = jnp.sign(sign_sum / count - config.ada_target) * images / (config.ada_kimg * 1000)
  zero = jnp.zeros((), jnp.float32)
  return AdaState(p=jnp.where(due, jnp.maximum(ada.p + adjust, 0.0), ada.p),
                  sign_sum=jnp.where(due, zero, sign_sum), count=jnp.where(due, zero, count))
