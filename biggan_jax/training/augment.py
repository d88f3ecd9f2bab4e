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
"""

import jax
import jax.numpy as jnp

POLICIES = ('color', 'translation', 'cutout')


def parse(policy: str) -> tuple[str, ...]:
  names = tuple(p for p in (s.strip() for s in policy.split(',')) if p)
  for p in names:
    if p not in POLICIES:
      raise ValueError(f'augment={policy!r}: unknown {p!r}; use names from {POLICIES}')
  return names


def color(x, rng):
  """Brightness ±0.5, saturation x[0, 2], contrast x[0.5, 1.5] per image (reference ranges)."""
  kb, ks, kc = jax.random.split(rng, 3)
  n = x.shape[0]
  x = x + (jax.random.uniform(kb, (n, 1, 1, 1), x.dtype) - 0.5)
  mean = x.mean(axis=3, keepdims=True)
  x = (x - mean) * (jax.random.uniform(ks, (n, 1, 1, 1), x.dtype) * 2) + mean
  mean = x.mean(axis=(1, 2, 3), keepdims=True)
  return (x - mean) * (jax.random.uniform(kc, (n, 1, 1, 1), x.dtype) + 0.5) + mean


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


def diff_augment(x, rng, policy: str):
  """Applies `policy`'s transforms in order; identity for ''."""
  names = parse(policy)
  for name, key in zip(names, jax.random.split(rng, max(len(names), 1))):
    x = _FNS[name](x, key)
  return x
