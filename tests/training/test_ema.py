"""EMA of G: the paper's constant decay and StyleGAN2-ADA's half-life with ramp-up."""

import jax.numpy as jnp
import numpy as np
import pytest

from biggan_jax.training import ema


class _Config:
  batch_size, ema_decay, ema_kimg, ema_rampup = 64, 0.9999, 0.0, 0.0

  def __init__(self, **overrides):
    self.__dict__.update(overrides)


def test_off_by_default_is_the_constant_decay():
  assert ema.decay(_Config(), 123) == 0.9999


def test_half_life_of_ema_decay_gives_ema_decay_back():
  c = _Config(ema_rampup=0.05)
  half_life = ema.half_life_images(c)
  assert 0.9999 ** (half_life / 64) == pytest.approx(0.5)
  # Once ema_rampup * images made exceeds the half-life, the ramp-up is over.
  late = int(half_life / 0.05 / 64) + 1
  assert float(ema.decay(c, late)) == pytest.approx(0.9999, abs=1e-7)


def test_rampup_follows_stylegan2_ada():
  """training_loop.py: ema_nimg = min(ema_kimg * 1000, cur_nimg * ema_rampup),
  ema_beta = 0.5 ** (batch_size / max(ema_nimg, 1e-8))."""
  c = _Config(ema_kimg=10.0, ema_rampup=0.05)
  for step in (0, 1, 100, 3124, 3125, 10_000):
    ema_nimg = min(10_000, step * 64 * 0.05)
    expected = 0.5 ** (64 / max(ema_nimg, 1e-8))
    assert float(ema.decay(c, jnp.int32(step))) == pytest.approx(expected, rel=1e-5), step
  assert float(ema.decay(c, 0)) == 0.0  # the EMA copies G at the start


def test_ema_kimg_alone_is_a_fixed_half_life():
  c = _Config(ema_kimg=10.0)
  np.testing.assert_allclose(float(ema.decay(c, 5)), 0.5 ** (64 / 10_000), rtol=1e-6)
