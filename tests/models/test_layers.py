"""Spectral norm, BigGAN BatchNorm (incl. cross-replica on 8 devices), attention."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
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


# ------------------------------------------------- bfloat16 compute: sums in float32
def test_affine_gradients_accumulate_in_float32():
  """The bias gradient of a bfloat16 x is a sum over 32,768 positions: in float32 it is
  327.68 to bfloat16's rounding; accumulated in bfloat16 (XLA:CPU) it stalls at 4."""
  x = jnp.zeros((32, 32, 32, 2), jnp.bfloat16)
  g = jnp.full(x.shape, 0.01, jnp.bfloat16)
  f = lambda gain, bias: jnp.sum((layers.affine(x + 1, gain, bias) * g).astype(jnp.float32))
  dgain, dbias = jax.grad(f, argnums=(0, 1))(jnp.ones(2), jnp.zeros(2))
  np.testing.assert_allclose(dbias, 327.68, rtol=4e-3)
  np.testing.assert_allclose(dgain, 327.68, rtol=4e-3)
  assert layers.affine(x, jnp.ones(2), jnp.zeros(2)).dtype == jnp.bfloat16


def _bfloat16_sums(jaxpr, found):
  """Every reduce_* / cumulative op in `jaxpr` (and its sub-jaxprs) that sums more than 4
  bfloat16 values into one: (primitive, operand shape, where in the model); and
  ('conv', ...) for each bfloat16 convolution."""
  from jax.extend import core as jax_core
  for eqn in jaxpr.eqns:
    operand = eqn.invars[0].aval if eqn.invars else None
    if (eqn.primitive.name == 'conv_general_dilated'
        and getattr(operand, 'dtype', None) == jnp.bfloat16):
      found.append(('conv', operand.shape, ''))
    if (eqn.primitive.name in ('reduce_sum', 'reduce_prod', 'cumsum', 'cumprod')
        and getattr(operand, 'dtype', None) == jnp.bfloat16):
      axes = eqn.params.get('axes') or (eqn.params.get('axis'),)
      if np.prod([operand.shape[a] for a in axes]) > 4:  # nearest upsampling's 2-sums pass
        found.append((eqn.primitive.name, operand.shape, str(eqn.source_info.name_stack)))
    for sub in jax_core.jaxprs_in_params(eqn.params):
      _bfloat16_sums(sub, found)
  return found


@pytest.mark.parametrize('family', ['biggan', 'biggan_deep'])
def test_no_gradient_sum_accumulates_in_bfloat16(family):
  """Under model.dtype=bfloat16 the D step (with R1 for BigGAN, whose double backward
  goes through the same layers) and the G step sum nothing in
  bfloat16: BN statistics, SN, softmax, D's output and the losses are float32 already,
  and layers.affine keeps the biases', BN gains' and attention gamma's gradient sums
  in float32. Convolutions and matmuls accumulate in float32 on every backend."""
  from biggan_jax import config as config_lib, models
  from biggan_jax.training import step as step_lib
  config = config_lib.from_file('configs/tiny.py')
  config.model.update(family=family, dtype='bfloat16')
  config.r1 = family == 'biggan'
  G, D = models.create_generator(config.model), models.create_discriminator(config.model)
  ctx = dict(config=config, generator=G, discriminator=D)
  n, r = 4, config.model.resolution
  x, z = jnp.zeros((n, r, r, 3)), jnp.zeros((n, config.model.dim_z))
  y, key = jnp.zeros((n,), jnp.int32), jax.random.key(0)
  g_vars = jax.eval_shape(lambda: G.init(key, z, y, train=False))
  d_vars = jax.eval_shape(lambda: D.init(key, x, y, train=False))
  g_params, d_params = g_vars.pop('params'), d_vars.pop('params')
  mutables = (g_vars, d_vars)  # G's batch_stats and spectral, D's spectral
  d_step = jax.make_jaxpr(lambda gp, *a: jax.grad(functools.partial(
      step_lib.d_loss_fn, **ctx, g_params=gp, p=None, r1_due=True), has_aux=True)(*a))(
          g_params, d_params, mutables, x, y, z, y, key)
  g_step = jax.make_jaxpr(lambda dp, *a: jax.grad(functools.partial(
      step_lib.g_loss_fn, **ctx, d_params=dp, p=None), has_aux=True)(*a))(
          d_params, g_params, mutables, z, y, key)
  for step in (d_step, g_step):
    found = _bfloat16_sums(step.jaxpr, [])
    assert any(kind == 'conv' for kind, _, _ in found)  # the compute is bfloat16
    assert not [f for f in found if f[0] != 'conv'], found
