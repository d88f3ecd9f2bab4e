"""Top singular values by Lanczos against numpy's SVD; `track` on params."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from biggan_jax.training import spectral

_top3 = jax.jit(lambda w: spectral.top_singular_values(w, k=3))


def _svd3(w):
  return np.linalg.svd(np.asarray(w, np.float64), compute_uv=False)[:3]


def _check(got, ref, rtol0=1e-3, rtol12=1e-2):
  got = np.asarray(got)
  np.testing.assert_allclose(got[0], ref[0], rtol=rtol0)
  np.testing.assert_allclose(got[1:], ref[1:], rtol=rtol12)


def test_gaussian_matrix():
  w = np.random.default_rng(0).standard_normal((64, 576)).astype(np.float32)
  assert min(w.shape) > spectral.NUM_ITERS   # the Lanczos path, not the SVD one
  _check(_top3(w), _svd3(w))
  _check(_top3(w.T), _svd3(w))               # the WᵀW side


def test_known_spectrum_with_close_second_and_third():
  rng = np.random.default_rng(1)
  u, _ = np.linalg.qr(rng.standard_normal((120, 120)))
  v, _ = np.linalg.qr(rng.standard_normal((400, 120)))
  s = np.concatenate([[5.0, 3.0, 2.9], np.linspace(1.0, 0.01, 117)])
  w = ((u * s) @ v.T).astype(np.float32)
  np.testing.assert_allclose(_top3(w), [5.0, 3.0, 2.9], rtol=1e-4)


def test_repeated_singular_values_of_orthogonal_init():
  """All σ = 1: the Krylov space breaks down at once and must restart to see
  σ1 and σ2, which a plain Lanczos run would report as 0."""
  q, _ = np.linalg.qr(np.random.default_rng(2).standard_normal((512, 96)))
  np.testing.assert_allclose(_top3(q.T.astype(np.float32)), [1.0, 1.0, 1.0], rtol=1e-5)


def test_low_rank_and_thin_matrices():
  rng = np.random.default_rng(3)
  w = (rng.standard_normal((80, 2)) @ rng.standard_normal((2, 150))).astype(np.float32)
  got = np.asarray(_top3(w))
  np.testing.assert_allclose(got[:2], _svd3(w)[:2], rtol=1e-4)
  assert abs(got[2]) < 1e-3 * got[0]
  row = rng.standard_normal((1, 50)).astype(np.float32)   # D's final linear as (out, in)
  np.testing.assert_allclose(_top3(row), [np.linalg.norm(row), 0.0, 0.0], rtol=1e-5)


def test_track_conv_kernels_and_names():
  rng = np.random.default_rng(4)
  params = {
      'block0': {'conv1': {'kernel': rng.standard_normal((3, 3, 32, 16)),     # SVD path
                           'bias': rng.standard_normal(16)},
                 'conv2': {'kernel': rng.standard_normal((3, 3, 32, 64))}},   # Lanczos path
      'shared': {'embedding': rng.standard_normal((10, 8))},
  }
  params = jax.tree_util.tree_map(lambda x: jnp.asarray(x, jnp.float32), params)
  svs = jax.jit(spectral.track)(params)
  assert sorted(svs) == ['block0/conv1/kernel', 'block0/conv2/kernel', 'shared/embedding']
  for name in ('conv1', 'conv2'):
    k = np.asarray(params['block0'][name]['kernel'])
    torch_view = k.transpose(3, 2, 0, 1).reshape(k.shape[-1], -1)   # OIHW -> (out, -1)
    assert svs[f'block0/{name}/kernel'].shape == (3,)
    _check(svs[f'block0/{name}/kernel'], _svd3(torch_view))
  _check(svs['shared/embedding'], _svd3(params['shared']['embedding']))
  assert 'shared/embedding' not in spectral.track(params, exclude=('shared',))


def test_track_inside_cond_under_jit():
  """The train step runs tracking every sv_every steps in a lax.cond branch."""
  w = np.random.default_rng(5).standard_normal((48, 200)).astype(np.float32)
  params = {'linear': {'kernel': jnp.asarray(w.T)}}

  @jax.jit
  def maybe_track(params, step):
    return jax.lax.cond(step % 100 == 0,
                        lambda p: spectral.track(p),
                        lambda p: {'linear/kernel': jnp.zeros(3)}, params)

  _check(maybe_track(params, 200)['linear/kernel'], _svd3(w))
  np.testing.assert_array_equal(maybe_track(params, 201)['linear/kernel'], np.zeros(3))


_pair = jax.jit(spectral.top_singular_pair)


def _dense_pair(w):
  u, s, vt = np.linalg.svd(np.asarray(w, np.float64), full_matrices=False)
  return s[0], s[1], u[:, 0], vt[0]


@pytest.mark.parametrize('shape', [(64, 576), (576, 64), (30, 200), (200, 30)],
                         ids=['lanczos_wide', 'lanczos_tall', 'svd_wide', 'svd_tall'])
def test_top_singular_pair_matches_the_dense_svd(shape):
  """σ0, σ1 and the top singular vectors (up to their common sign)."""
  w = np.random.default_rng(2).standard_normal(shape).astype(np.float32)
  s0, s1, u0, v0 = _pair(w)
  r0, r1, ru, rv = _dense_pair(w)
  np.testing.assert_allclose([s0, s1], [r0, r1], rtol=1e-5)
  sign = np.sign(np.dot(u0, ru))
  np.testing.assert_allclose(sign * np.asarray(u0), ru, atol=2e-5)
  np.testing.assert_allclose(sign * np.asarray(v0), rv, atol=2e-5)
  # σ0 is recomputed from the returned vectors, which the clamp relies on.
  np.testing.assert_allclose(np.asarray(u0) @ w @ np.asarray(v0), s0, rtol=1e-6)
