"""Modified orthogonal regularisation against BigGAN-PyTorch's utils.ortho."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from biggan_jax.training import regularizers
from biggan_jax.models import biggan

BETA = 1e-4


def _params(seed=0):
  rng = np.random.default_rng(seed)
  normal = lambda *shape: jnp.asarray(rng.standard_normal(shape), jnp.float32)
  return {
      'block0': {'conv1': {'kernel': normal(3, 3, 8, 16), 'bias': normal(16)}},
      'wide': {'kernel': normal(30, 6)},     # W (6, 30)
      'tall': {'kernel': normal(10, 24)},    # W (24, 10)
      'embed': {'embedding': normal(5, 12)},
      'shared': {'embedding': normal(7, 4)},
      'attn0': {'gamma': jnp.asarray(0.5)},
  }


def _upstream_grad(w):
  """BigGAN-PyTorch utils.ortho: 2 ((W Wᵀ) ⊙ (1 − I)) W on W (out, in)."""
  w = np.asarray(w, np.float64)
  return 2 * ((w @ w.T) * (1 - np.eye(w.shape[0]))) @ w


def _upstream_penalty(w):
  w = np.asarray(w, np.float64)
  return np.sum(((w @ w.T) * (1 - np.eye(w.shape[0])))**2)


def _expected_reference_grad(params):
  k = params['block0']['conv1']['kernel']
  return {
      'block0/conv1/kernel': _upstream_grad(k.reshape(-1, 16).T).T.reshape(k.shape),
      'wide/kernel': _upstream_grad(params['wide']['kernel'].T).T,    # out < in
      'tall/kernel': _upstream_grad(params['tall']['kernel'].T).T,    # out > in
      'embed/embedding': _upstream_grad(params['embed']['embedding']),
  }


_reference_grad = jax.jit(jax.grad(
    lambda p: regularizers.ortho_penalty(p, BETA, reference_grad=True)))
_penalty = jax.jit(regularizers.ortho_penalty, static_argnames='reference_grad')


def _flat(tree):
  return {'/'.join(k.key for k in path): leaf
          for path, leaf in jax.tree_util.tree_leaves_with_path(tree)}


def test_reference_grad_equals_upstream_update_float64():
  with jax.enable_x64(True):
    params = jax.tree_util.tree_map(lambda x: jnp.asarray(x, jnp.float64), _params())
    grad = _flat(_reference_grad(params))
    for name, expected in _expected_reference_grad(params).items():
      assert grad[name].dtype == jnp.float64
      np.testing.assert_allclose(grad[name], BETA * expected, rtol=1e-10, err_msg=name)


def test_reference_grad_equals_upstream_update_float32():
  """Normwise: single elements are sums that cancel, relative error grows there."""
  params = _params()
  grad = _flat(_reference_grad(params))
  for name, expected in _expected_reference_grad(params).items():
    err = np.linalg.norm(np.asarray(grad[name], np.float64) - BETA * expected)
    assert err <= 1e-5 * np.linalg.norm(BETA * expected), name


def test_paper_scale_is_twice_reference():
  params = _params(1)
  expected = sum(_upstream_penalty(w) for w in (
      params['block0']['conv1']['kernel'].reshape(-1, 16).T,
      params['wide']['kernel'].T, params['tall']['kernel'].T,
      params['embed']['embedding']))
  paper = _penalty(params, BETA)
  np.testing.assert_allclose(paper, BETA * expected, rtol=1e-5)
  np.testing.assert_allclose(_penalty(params, BETA, reference_grad=True),
                             0.5 * paper, rtol=1e-6)


def test_conv_view_matches_torch_layout():
  """HWIO -> (out, h·w·in) orders columns differently from torch's OIHW view,
  which leaves the filter Gram, and so the penalty, unchanged."""
  k = jnp.asarray(np.random.default_rng(2).standard_normal((3, 3, 8, 16)), jnp.float32)
  torch_view = np.asarray(k).transpose(3, 2, 0, 1).reshape(16, -1)
  np.testing.assert_allclose(_penalty({'conv': {'kernel': k}}, 1.0),
                             _upstream_penalty(torch_view), rtol=1e-5)


def test_orthogonal_rows_cost_nothing_whatever_their_norms():
  q, _ = np.linalg.qr(np.random.default_rng(3).standard_normal((27, 16)))  # HWIO flattened
  kernel = jnp.asarray((q * np.linspace(0.5, 3.0, 16)).reshape(3, 3, 3, 16), jnp.float32)
  assert float(_penalty({'c': {'kernel': kernel}}, 1.0)) == pytest.approx(
      0.0, abs=1e-9)


def test_shared_embedding_biases_and_gammas_excluded():
  params = _params()
  base = _penalty(params, BETA)
  changed = jax.tree_util.tree_map(lambda x: x, params)
  changed['shared']['embedding'] = 100.0 * params['shared']['embedding']
  changed['block0']['conv1']['bias'] = 100.0 * params['block0']['conv1']['bias']
  changed['attn0']['gamma'] = jnp.asarray(7.0)
  assert float(_penalty(changed, BETA)) == float(base)
  grad = jax.jit(jax.grad(lambda p: regularizers.ortho_penalty(p, BETA)))(params)
  assert not np.any(grad['shared']['embedding'])
  assert not np.any(grad['block0']['conv1']['bias'])
  # Tracking (exclude=()) does see the shared embedding.
  assert 'shared/embedding' in regularizers.weight_matrices(params)


def test_weight_matrices_on_generator():
  g = biggan.Generator(resolution=16, ch=4, dim_z=12, shared_dim=8, num_classes=5, attn=(16,))
  shapes = jax.eval_shape(lambda: g.init(
      {'params': jax.random.key(0)}, jnp.zeros((1, 12)), jnp.zeros((1,), jnp.int32),
      train=False))['params']
  mats = jax.eval_shape(lambda p: regularizers.weight_matrices(p, exclude=('shared',)), shapes)
  assert 'shared/embedding' not in mats
  assert all(w.ndim == 2 for w in mats.values())
  assert mats['block0/conv1/kernel'].shape == (16, 9 * 16)      # (out, 3·3·in)
  assert mats['block0/bn1/gain/kernel'].shape == (16, 8 + 4)    # (out, shared + z chunk)
  assert mats['linear/kernel'].shape == (16 * 16, 4)              # (4·4·16, z chunk)
  assert mats['attn1/theta/kernel'].shape == (2, 16)
  assert not any(name.endswith(('bias', 'gamma')) for name in mats)
