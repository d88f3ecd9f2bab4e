"""The two ways images reach the FID Inception at 299x299: pytorch-fid's and clean-fid's.

- 'pytorch-fid' (default; the numbers BigGAN papers report): bilinear without
  antialiasing, then 2x - 1 (evaluation/inception.py: to_inception_input).
- 'clean' (Parmar et al., "On Aliased Resizing and Surprising Subtleties in
  GAN Evaluation", CVPR 2022; clean-fid's mode="clean"): each channel resized
  as a float image with PIL's antialiased bicubic (cleanfid/resize.py:
  make_resizer("PIL", False, "bicubic", (299, 299))), clipped to [0, 255],
  then (x - 128) / 128 as its Inception's forward does
  (cleanfid/inception_torchscript.py). PIL's filter is Keys' cubic with
  a = -0.5, widened by the scale when downsampling, its taps renormalised at
  the borders: exactly jax.image.resize('bicubic', antialias=True), so it
  runs on device here. Generated float images in [-1, 1] are mapped to
  [0, 255] without quantising, as clean-fid feeds a generator's output.

The network and weights stay pytorch-fid's (the same TF graph clean-fid's
TorchScript port holds), so 'clean' numbers are clean-fid's preprocessing on
pytorch-fid's port: comparable with clean-fid's to the ports' agreement.
"""

import jax
import jax.numpy as jnp

MODES = ('pytorch-fid', 'clean')
RESOLUTION = 299


def clean_inception_input(images: jax.Array) -> jax.Array:
  """NHWC uint8 [0, 255] or float [-1, 1] -> (N, 299, 299, 3) as clean-fid's 'clean' mode."""
  if images.dtype == jnp.uint8:
    x = images.astype(jnp.float32)
  else:
    x = (images.astype(jnp.float32) + 1.0) * 127.5
  n, h, w, c = x.shape
  if (h, w) != (RESOLUTION, RESOLUTION):
    x = jax.image.resize(x, (n, RESOLUTION, RESOLUTION, c), 'bicubic', antialias=True,
                         precision=jax.lax.Precision.HIGHEST)
  return (jnp.clip(x, 0.0, 255.0) - 128.0) / 128.0


def inception_input_fn(mode: str):
  """The images -> Inception input function of `mode` (one of MODES)."""
  if mode == 'clean':
    return clean_inception_input
  if mode == 'pytorch-fid':
    from biggan_jax.evaluation import inception
    return inception.to_inception_input
  raise ValueError(f'resize={mode!r}: one of {", ".join(MODES)}')


def check_same(mode: str, stats, what: str) -> None:
  """Raises unless `stats` (a FeatureStats) were computed with `mode` (files without the
  record are pytorch-fid's: every file written before 'clean' existed, and pytorch-fid's)."""
  theirs = stats.meta.get('resize', 'pytorch-fid')
  if theirs != mode:
    raise ValueError(f'{what} holds statistics of {theirs!r}-resized images but these use '
                     f'{mode!r}; FIDs across the two are not comparable: pass '
                     f'--resize={theirs} (or recompute the reference)')
