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
    augment.diff_augment(_ramp(), jax.random.PRNGKey(0), 'translation,rotate')


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


# ADA (Karras et al. 2020): p per transform per image, and its r_t controller.

POLICY = 'color,translation,cutout'


def test_p_one_is_diffaugment_and_p_zero_the_identity():
  x, key = _ramp(8), jax.random.PRNGKey(5)
  np.testing.assert_array_equal(augment.diff_augment(x, key, POLICY, p=1.0),
                                augment.diff_augment(x, key, POLICY))
  np.testing.assert_array_equal(augment.diff_augment(x, key, POLICY, p=0.0), x)


def test_p_gates_each_image_on_its_own():
  x = jnp.ones((2000, 8, 8, 1))
  out = np.asarray(augment.diff_augment(x, jax.random.PRNGKey(6), 'cutout', p=0.25))
  cut = (out == 0).any(axis=(1, 2, 3))
  assert abs(cut.mean() - 0.25) < 0.03  # binomial sd 0.01


class _Config:
  batch_size, num_d_steps, ada_interval, ada_kimg, ada_target = 64, 2, 4, 500, 0.6


def test_ada_moves_p_every_interval_by_the_images_seen():
  c = _Config()
  step_size = 64 * 2 * 4 / 500_000  # real images in the interval / (ada_kimg * 1000)
  ada = augment.ada_init()
  for step in (1, 2, 3):  # r_t = 0.9 > 0.6 measured, p not moved yet
    ada = augment.ada_update(ada, jnp.array([0.9, 0.9]), step, c)
    assert float(ada.p) == 0.0
  assert float(ada.count) == 6 and float(ada.sign_sum) == pytest.approx(5.4)
  ada = augment.ada_update(ada, jnp.array([0.9, 0.9]), 4, c)
  assert float(ada.p) == pytest.approx(step_size) and float(ada.count) == 0
  for step in range(5, 9):  # r_t = 0.5 < 0.6: p back down, clamped at 0
    ada = augment.ada_update(ada, jnp.array([0.5, 0.5]), step, c)
  assert float(ada.p) == 0.0
  ada = augment.ada_update(augment.AdaState(p=jnp.float32(0.5), sign_sum=jnp.float32(0.0),
                                            count=jnp.float32(0.0)),
                           jnp.array([0.2, 0.3]), 12, c)
  assert float(ada.p) == pytest.approx(0.5 - step_size)
