"""Spectral norm, BigGAN BatchNorm (incl. cross-replica on 8 devices), attention."""

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from biggan_jax.models import layers


def test_spectral_norm_converges_to_top_singular_value():
  w = jax.random.normal(jax.random.key(0), (24, 40))
  u = jax.random.normal(jax.random.key(1), (1, 24))
  sigma, _, _ = layers.power_iteration(w, u, n_iters=200, eps=1e-12)
  np.testing.assert_allclose(sigma, np.linalg.svd(np.asarray(w))[1][0], rtol=1e-5)


def test_spectral_norm_gradient_is_u_v_outer():
  """d sigma / dW = uᵀ v with u, v held constant, as in BigGAN-PyTorch."""
  w = jax.random.normal(jax.random.key(0), (6, 9))
  u0 = jax.random.normal(jax.random.key(1), (1, 6))
  grad = jax.grad(lambda w: layers.power_iteration(w, u0, 1, 1e-6)[0])(w)
  _, u, v = layers.power_iteration(w, u0, 1, 1e-6)
  np.testing.assert_allclose(grad, u.T @ v, rtol=1e-5, atol=1e-6)


def test_sn_state_advances_in_train_mode_only():
  conv = layers.SNConv(8)
  x = jnp.ones((2, 8, 8, 3))
  v = conv.init({'params': jax.random.key(0)}, x, train=False)
  _, eval_state = conv.apply(v, x, train=False, mutable=['spectral'])
  np.testing.assert_array_equal(eval_state['spectral']['sn']['u'], v['spectral']['sn']['u'])
  _, train_state = conv.apply(v, x, train=True, mutable=['spectral'])
  assert not np.allclose(train_state['spectral']['sn']['u'], v['spectral']['sn']['u'])
  # The normalised kernel has spectral norm sigma_hat/sigma ~ 1 after a step.
  kmat = np.asarray(v['params']['kernel']).reshape(-1, 8).T
  sigma = float(train_state['spectral']['sn']['sigma'])
  assert 0.5 < sigma / np.linalg.svd(kmat)[1][0] <= 1.0 + 1e-6


def test_batchnorm_running_stats_use_unbiased_variance():
  x = jax.random.normal(jax.random.key(0), (4, 3, 3, 5)) * 2.0 + 1.0
  bn = layers.BatchStats(eps=1e-5, momentum=0.1)
  v = bn.init({}, x, train=False)
  out, state = bn.apply(v, x, train=True, mutable=['batch_stats'])
  xs = np.asarray(x).reshape(-1, 5)
  np.testing.assert_allclose(state['batch_stats']['mean'], 0.1 * xs.mean(0), rtol=1e-5)
  np.testing.assert_allclose(state['batch_stats']['var'],
                             0.9 + 0.1 * xs.var(0, ddof=1), rtol=1e-5)
  np.testing.assert_allclose(
      np.asarray(out).reshape(-1, 5),
      (xs - xs.mean(0)) / np.sqrt(xs.var(0) + 1e-5), rtol=1e-4, atol=1e-5)


def test_cross_replica_batchnorm_on_8_devices():
  """Batch sharded over 8 devices under jit: stats are over the global batch."""
  assert jax.device_count() == 8
  mesh = Mesh(np.array(jax.devices()), ('data',))
  x = jax.random.normal(jax.random.key(0), (16, 4, 4, 6))
  x = x + jnp.arange(16.0)[:, None, None, None]  # per-shard means differ a lot
  c = jax.random.normal(jax.random.key(1), (16, 10))
  bn = layers.ConditionalBatchNorm()
  v = bn.init({'params': jax.random.key(2)}, x, c, train=False)
  step = jax.jit(lambda v, x, c: bn.apply(v, x, c, train=True,
                                          mutable=['batch_stats', 'spectral']))
  want, want_state = step(v, x, c)
  sharded = NamedSharding(mesh, P('data'))
  got, got_state = step(v, jax.device_put(x, sharded), jax.device_put(c, sharded))
  assert got.sharding.spec == P('data')
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
  for key in ('mean', 'var'):
    np.testing.assert_allclose(got_state['batch_stats']['stats'][key],
                               want_state['batch_stats']['stats'][key], rtol=1e-5)
  # Per-device statistics would have given something else entirely.
  per_device = np.asarray(x).reshape(8, 2, 4, 4, 6).mean(axis=(1, 2, 3))
  assert np.abs(per_device - np.asarray(x).mean(axis=(0, 1, 2))).max() > 1.0


def test_attention_starts_as_identity():
  x = jax.random.normal(jax.random.key(0), (2, 8, 8, 16))
  attn = layers.Attention()
  v = attn.init({'params': jax.random.key(1)}, x, train=False)
  assert float(v['params']['gamma']) == 0.0
  np.testing.assert_array_equal(attn.apply(v, x, train=False), x)
  v = jax.tree_util.tree_map(lambda a: a, v)
  v['params']['gamma'] = jnp.float32(1.0)
  assert not np.allclose(attn.apply(v, x, train=False), x)


def test_init_schemes():
  shape = (3, 3, 16, 32)
  ortho = layers.kernel_init('ortho')(jax.random.key(0), shape).reshape(-1, 32)
  np.testing.assert_allclose(ortho.T @ ortho, np.eye(32), atol=1e-5)
  n02 = layers.kernel_init('N02')(jax.random.key(0), shape)
  assert abs(float(n02.std()) - 0.02) < 0.002
  xavier = layers.kernel_init('xavier')(jax.random.key(0), shape)
  bound = np.sqrt(6.0 / (16 * 9 + 32 * 9))
  assert float(jnp.abs(xavier).max()) <= bound and float(jnp.abs(xavier).max()) > 0.9 * bound


def test_nearest_upsample_and_avg_pool_invert():
  x = jax.random.normal(jax.random.key(0), (2, 4, 4, 3))
  up = layers.upsample_nearest(x)
  assert up.shape == (2, 8, 8, 3)
  np.testing.assert_allclose(layers.avg_pool(up), x, rtol=1e-6)
