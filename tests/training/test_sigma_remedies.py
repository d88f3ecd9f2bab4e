"""The paper's σ0 remedies (App. F) against numpy's dense SVD."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from biggan_jax.training import regularizers, sigma_remedies


def remedy_config(**overrides):
  c = ml_collections.ConfigDict(dict(sigma0_penalty=1.0, sigma0_clamp=True, sigma0_target=0.0,
                                     sigma0_ratio=2.0, sigma0_nets='G'))
  c.update(overrides)
  return c


def spectrum_matrix(rng, out, inp, top):
  """A matrix with singular values `top` followed by a slow decay (a gap after σ0)."""
  u, _ = np.linalg.qr(rng.standard_normal((out, min(out, inp))))
  v, _ = np.linalg.qr(rng.standard_normal((inp, min(out, inp))))
  s = np.concatenate([top, np.linspace(0.9, 0.1, min(out, inp) - len(top))])
  return ((u * s) @ v.T).astype(np.float32)


def params():
  """G-like weights in flax layouts: a dense kernel (in, out), a conv kernel HWIO, the shared
  embedding (left alone), a bias (not a matrix). Thin enough for the tracker's exact-SVD
  path (compiles in a moment); its Lanczos path is tested in test_spectral.py."""
  rng = np.random.default_rng(0)
  dense = spectrum_matrix(rng, 96, 20, [6.0, 1.5])          # (out, in) view
  conv = spectrum_matrix(rng, 40, 3 * 3 * 16, [4.0, 1.0])   # (out, in) view, in = h*w*c
  return {'linear': {'kernel': jnp.asarray(dense.T)},
          'block0': {'conv1': {'kernel': jnp.asarray(conv.T.reshape(3, 3, 16, 40))}},
          'shared': {'embedding': jnp.asarray(spectrum_matrix(rng, 5, 8, [9.0, 1.0]))},
          'bias': jnp.ones(3)}


def svd(w):
  return np.linalg.svd(np.asarray(w, np.float64), full_matrices=False)


def test_map_weight_matrices_round_trips_the_views():
  p = params()
  same = regularizers.map_weight_matrices(lambda name, w: w, p, ('shared',))
  for a, b in zip(jax.tree.leaves(p), jax.tree.leaves(same)):
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize('target,expected', [(0.0, {'linear/kernel': 3.0,
                                                    'block0/conv1/kernel': 2.0}),
                                             (2.5, {'linear/kernel': 2.5,
                                                    'block0/conv1/kernel': 2.5})],
                         ids=['ratio', 'fixed'])
def test_the_clamp_lowers_sigma0_and_keeps_the_rest(target, expected):
  """W − max(0, σ0 − σ_clamp) u0 v0ᵀ: σ0 becomes σ_clamp (r·σ1 = 2σ1 or a fixed σ_reg), every
  other singular value and all singular vectors stay; the embedding is not touched."""
  p = params()
  out = jax.jit(lambda q: sigma_remedies.clamp(q, remedy_config(sigma0_target=target)))(p)
  before = regularizers.weight_matrices(p)
  after = regularizers.weight_matrices(out)
  for name, sigma0 in expected.items():
    (u, s, vt), (u2, s2, vt2) = svd(before[name]), svd(after[name])
    np.testing.assert_allclose(sorted(s2, reverse=True)[0], sigma0, rtol=1e-5)
    np.testing.assert_allclose(sorted(s2, reverse=True)[1:], s[1:], rtol=1e-5, atol=1e-6)
    # What was removed is exactly (σ0 − σ_clamp) u0 v0ᵀ.
    np.testing.assert_allclose(np.asarray(before[name]) - np.asarray(after[name]),
                               (s[0] - sigma0) * np.outer(u[:, 0], vt[0]), atol=2e-5)
  np.testing.assert_array_equal(out['shared']['embedding'], p['shared']['embedding'])
  np.testing.assert_array_equal(out['bias'], p['bias'])


def test_the_clamp_leaves_weights_below_the_target_alone():
  p = params()
  out = jax.jit(lambda q: sigma_remedies.clamp(q, remedy_config(sigma0_target=10.0)))(p)
  for a, b in zip(jax.tree.leaves(p), jax.tree.leaves(out)):
    np.testing.assert_allclose(a, b, atol=1e-6)


@pytest.mark.parametrize('target', [0.0, 2.5], ids=['ratio', 'fixed'])
def test_the_penalty_and_its_gradient(target):
  """Σ (σ0 − t)², gradient 2(σ0 − t) u0 v0ᵀ per weight; with t = r·sg(σ1) no gradient reaches σ1."""
  p = params()
  config = remedy_config(sigma0_target=target)
  value, grads = jax.jit(jax.value_and_grad(lambda q: sigma_remedies.penalty(q, config)))(p)
  expected_value = 0.0
  grad_views = regularizers.weight_matrices(grads)
  for name, w in regularizers.weight_matrices(p, ('shared',)).items():
    u, s, vt = svd(w)
    t = target or 2.0 * s[1]
    expected_value += (s[0] - t) ** 2
    np.testing.assert_allclose(grad_views[name], 2 * (s[0] - t) * np.outer(u[:, 0], vt[0]),
                               atol=2e-5)
  np.testing.assert_allclose(value, expected_value, rtol=1e-5)
  np.testing.assert_array_equal(grads['shared']['embedding'], 0.0)


def test_add_penalty_and_after_update_follow_the_config():
  p, metrics = params(), {}
  zeros = jax.tree.map(jnp.zeros_like, p)
  off = remedy_config(sigma0_penalty=0.0, sigma0_clamp=False)
  assert sigma_remedies.add_penalty(zeros, p, off, 'G', metrics) is zeros and not metrics
  assert sigma_remedies.after_update(p, off, 'G') is p
  on = remedy_config(sigma0_penalty=0.5)
  assert sigma_remedies.after_update(p, on, 'D') is p   # sigma0_nets='G'
  grads, metrics = jax.jit(lambda g, q: (lambda m: (
      sigma_remedies.add_penalty(g, q, on, 'G', m), m))({}))(zeros, p)
  full = jax.jit(jax.grad(lambda q: sigma_remedies.penalty(q, on)))(p)
  np.testing.assert_allclose(grads['linear']['kernel'], 0.5 * full['linear']['kernel'],
                             rtol=1e-6)
  assert float(metrics['sigma0_penalty']) > 0
