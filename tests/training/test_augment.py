"""DiffAugment: the transforms do what they say, per image, and pass gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from biggan_jax.training import augment


def _ramp(n=4, h=8, w=8, c=3):
  return jnp.arange(n * h * w * c, dtype=jnp.float32).reshape(n, h, w, c) / (n * h * w * c)


def test_empty_policy_is_identity():
  x = _ramp()
  np.testing.assert_array_equal(augment.diff_augment(x, jax.random.PRNGKey(0), ''), x)


def test_unknown_policy_is_refused():
  with pytest.raises(ValueError, match='unknown'):
    augment.parse('translation,rotate')


def test_translation_shifts_each_image_by_a_whole_offset_within_ratio():
  x = jnp.ones((16, 8, 8, 1))
  out = np.asarray(augment.translation(x, jax.random.PRNGKey(1), ratio=0.25))
  for im in out[..., 0]:
    rows, cols = im.sum(1) > 0, im.sum(0) > 0
    # The ones block stays a rectangle of 8 - |shift| rows and columns, |shift| <= 2.
    assert rows.sum() >= 6 and cols.sum() >= 6
    assert im.sum() == rows.sum() * cols.sum()
  # Different images draw different shifts.
  assert len({out[i, ..., 0].tobytes() for i in range(16)}) > 1


def test_translation_moves_content_not_just_masks():
  x = jnp.zeros((1, 8, 8, 1)).at[0, 3, 4, 0].set(1.0)
  for seed in range(5):
    out = np.asarray(augment.translation(x, jax.random.PRNGKey(seed)))[0, ..., 0]
    assert out.sum() == 1.0  # the pixel moves by at most 1 (0.125 * 8) and is not lost
    (y,), (xx,) = np.nonzero(out)
    assert abs(y - 3) <= 1 and abs(xx - 4) <= 1


def test_cutout_zeroes_a_square_of_half_the_side():
  x = jnp.ones((32, 8, 8, 3))
  out = np.asarray(augment.cutout(x, jax.random.PRNGKey(2)))
  zeros = (out[..., 0] == 0).sum((1, 2))
  assert zeros.max() == 16 and zeros.min() >= 4  # 4x4 inside, clipped at the edges
  assert (out[..., 0] == out[..., 1]).all()  # the same mask over channels


def test_color_keeps_shape_and_changes_images():
  x = _ramp()
  out = augment.color(x, jax.random.PRNGKey(3))
  assert out.shape == x.shape
  assert float(jnp.abs(out - x).mean()) > 1e-3


def test_gradients_flow_through_every_transform():
  x = _ramp()
  g = jax.grad(lambda x: augment.diff_augment(x, jax.random.PRNGKey(4),
                                              'color,translation,cutout').sum())(x)
  assert float(jnp.abs(g).sum()) > 0
  # Under translation + cutout each output pixel is one input pixel or 0: gradients are 0/1.
  g = jax.grad(lambda x: augment.diff_augment(x, jax.random.PRNGKey(4),
                                              'translation,cutout').sum())(x)
  assert set(np.unique(np.asarray(g)).tolist()) <= {0.0, 1.0}
