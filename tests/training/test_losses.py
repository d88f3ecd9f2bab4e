"""GAN losses against BigGAN-PyTorch's numbers and by hand; the R1 penalty."""


import jax
import jax.numpy as jnp
import numpy as np
import pytest

from biggan_jax.training import losses
from paths import TESTDATA

FIXTURE = TESTDATA / 'biggan_pytorch_tiny64_f64.npz'


def test_hinge_matches_biggan_pytorch_in_float64():
  """loss_hinge_dis/gen of BigGAN-PyTorch on its own D logits (float64)."""
  ref = np.load(FIXTURE)
  with jax.enable_x64(True):
    real = jnp.asarray(ref['D_real_train'][:, 0])
    fake = jnp.asarray(ref['D_fake_train'][:, 0])
    assert real.dtype == jnp.float64
    loss_real, loss_fake = losses.d_loss('hinge', real, fake)
    loss_g = losses.g_loss('hinge', fake)
    np.testing.assert_allclose(loss_real, ref['loss_D_real'], rtol=1e-12)
    np.testing.assert_allclose(loss_fake, ref['loss_D_fake'], rtol=1e-12)
    np.testing.assert_allclose(loss_g, ref['loss_G'], rtol=1e-12)


def test_hinge_by_hand():
  real = jnp.array([2.0, 0.5, -1.0, 1.0])
  fake = jnp.array([-2.0, -0.5, 1.0, 0.0])
  loss_real, loss_fake = losses.d_loss('hinge', real, fake)
  # relu(1 - real) = 0, 0.5, 2, 0; relu(1 + fake) = 0, 0.5, 2, 1.
  assert float(loss_real) == pytest.approx(2.5 / 4)
  assert float(loss_fake) == pytest.approx(3.5 / 4)
  assert float(losses.g_loss('hinge', fake)) == pytest.approx(1.5 / 4)


def test_non_saturating_and_wasserstein_by_hand():
  real = jnp.array([0.0, np.log(3.0)])
  fake = jnp.array([0.0, -np.log(3.0)])
  # softplus(-log 3) = log(4/3), softplus(0) = log 2.
  expected = (np.log(2.0) + np.log(4 / 3)) / 2
  loss_real, loss_fake = losses.d_loss('non_saturating', real, fake)
  np.testing.assert_allclose([loss_real, loss_fake], [expected, expected], rtol=1e-6)
  # softplus(log 3) = log 4.
  np.testing.assert_allclose(losses.g_loss('non_saturating', fake),
                             (np.log(2.0) + np.log(4.0)) / 2, rtol=1e-6)
  real, fake = jnp.array([1.0, 3.0]), jnp.array([-1.0, 0.5])
  loss_real, loss_fake = losses.d_loss('wasserstein', real, fake)
  np.testing.assert_allclose([loss_real, loss_fake], [-2.0, -0.25], rtol=1e-6)
  np.testing.assert_allclose(losses.g_loss('wasserstein', fake), 0.25, rtol=1e-6)


def test_unknown_loss_names_the_allowed_ones():
  with pytest.raises(ValueError, match="'hinge', 'non_saturating', 'wasserstein'"):
    losses.d_loss('lsgan', jnp.zeros(2), jnp.zeros(2))
  with pytest.raises(ValueError, match='hinge'):
    losses.g_loss('lsgan', jnp.zeros(2))


def test_r1_of_linear_d_is_squared_weight_norm():
  """D(x) = <w, x> per sample: ∇ₓD = w for every sample, so r1 = ‖w‖²."""
  w = jax.random.normal(jax.random.key(0), (4, 4, 3))
  x = jax.random.normal(jax.random.key(1), (5, 4, 4, 3))
  d_fn = lambda x: jnp.sum(x * w, axis=(1, 2, 3))
  np.testing.assert_allclose(losses.r1_penalty(d_fn, x), jnp.sum(w**2), rtol=1e-6)


def test_r1_is_per_sample_mean():
  """D(x) = 0.75‖x‖²: ∇ₓD = 1.5x, so r1 = 2.25 · mean over samples of ‖x‖²."""
  x = jnp.array([[1.0, 2.0], [3.0, 0.0]])
  d_fn = lambda x: 1.5 * jnp.sum(x**2, axis=1) / 2
  expected = np.mean([1.5**2 * 5.0, 1.5**2 * 9.0])
  np.testing.assert_allclose(losses.r1_penalty(d_fn, x), expected, rtol=1e-6)


def test_r1_under_jit():
  w = jnp.arange(6.0).reshape(2, 3)
  x = jnp.ones((3, 2, 3))
  f = jax.jit(lambda x: losses.r1_penalty(lambda x: jnp.sum(x * w, axis=(1, 2)), x))
  np.testing.assert_allclose(f(x), 55.0, rtol=1e-6)


def test_mode_seeking_is_msgan_ratio():
  z = jnp.concatenate([jnp.zeros((2, 4)), jnp.full((2, 4), 2.0)])  # mean |z1 - z2| = 2
  x = jnp.concatenate([jnp.zeros((2, 3, 3, 3)), jnp.full((2, 3, 3, 3), 0.5)])  # 0.5
  np.testing.assert_allclose(losses.mode_seeking(x, z), 1 / (0.25 + 1e-5), rtol=1e-6)
  # G ignoring z (same images for different z) is what it punishes: 1 / eps.
  same = jnp.ones((4, 3, 3, 3))
  np.testing.assert_allclose(losses.mode_seeking(same, z), 1e5, rtol=1e-6)
