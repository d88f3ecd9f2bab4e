"""BigGAN-deep G and D: parameter counts, train/eval state, block order.

Block order is checked against NumPy re-implementations of BigGAN-PyTorch's
BigGANdeep.py GBlock / DBlock written from the same parameters.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from biggan_jax.models import biggan_deep
from biggan_jax.models import layers

COLLECTIONS = ('batch_stats', 'spectral')


def _key(seed):
  # 'rbg' keys: the eager initialisers compile ~3x faster on CPU than with
  # threefry, and nothing in the models depends on the PRNG implementation.
  return jax.random.key(seed, impl='rbg')


def _num_params(module, *args):
  shapes = jax.eval_shape(
      lambda: module.init({'params': jax.random.key(0)}, *args, train=False))
  return sum(leaf.size for leaf in jax.tree.leaves(shapes['params']))


def test_parameter_counts_match_biggan_pytorch_deep128():
  # BigGAN-PyTorch's BigGANdeep.py: BigGAN-deep 128, ch 128, dim_z 128, depth 2, attention 64.
  y = jnp.zeros((2,), jnp.int32)
  g = biggan_deep.Generator(resolution=128, ch=128, dim_z=128, shared_dim=128,
                            num_classes=1000, depth=2, attn=(64,))
  d = biggan_deep.Discriminator(resolution=128, ch=128, num_classes=1000, depth=2,
                                attn=(64,))
  assert _num_params(g, jnp.zeros((2, 128)), y) == 50_244_484
  assert _num_params(d, jnp.zeros((2, 128, 128, 3)), y) == 34_590_210


@pytest.mark.parametrize('depth', [1, 3])
def test_other_depths_keep_channel_flow(depth):
  # Upstream's G makes only block 0 in -> in and the rest in -> out, which breaks
  # unless depth is 2; here every block but the last is in -> in.
  y = jnp.zeros((2,), jnp.int32)
  g = biggan_deep.Generator(resolution=64, ch=8, dim_z=8, shared_dim=8, num_classes=5,
                            depth=depth, attn=(16,))
  d = biggan_deep.Discriminator(resolution=64, ch=8, num_classes=5, depth=depth,
                                attn=(16,))
  img = jax.eval_shape(lambda: g.init_with_output(
      {'params': jax.random.key(0)}, jnp.zeros((2, 8)), y, train=False)[0])
  logits = jax.eval_shape(lambda: d.init_with_output(
      {'params': jax.random.key(0)}, jnp.zeros((2, 64, 64, 3)), y, train=False)[0])
  assert img.shape == (2, 64, 64, 3) and logits.shape == (2,)


def _assert_state(before, after, train):
  """Train mode moves every BN running stat and SN vector u; eval moves nothing.

  sigma is not required to move: an orthogonal kernel already has sigma 1.
  """
  for path, a in jax.tree_util.tree_leaves_with_path(before):
    b = after
    for key in path:
      b = b[key.key]
    moved = not np.array_equal(np.asarray(a), np.asarray(b))
    if train and path[-1].key != 'sigma':
      assert moved, jax.tree_util.keystr(path)
    if not train:
      assert not moved, jax.tree_util.keystr(path)


@pytest.mark.parametrize('resolution', [32, 64])
def test_tiny_forward_train_and_eval(resolution):
  n, dim_z, num_classes = 3, 8, 5
  g = biggan_deep.Generator(resolution=resolution, ch=8, dim_z=dim_z, shared_dim=8,
                            num_classes=num_classes, depth=2, attn=(16,))
  d = biggan_deep.Discriminator(resolution=resolution, ch=8, num_classes=num_classes,
                                depth=2, attn=(16,))
  kz, kg, kd = jax.random.split(_key(resolution), 3)
  z = jax.random.normal(kz, (n, dim_z))
  y = jnp.array([0, 3, 4])
  g_vars = g.init({'params': kg}, z, y, train=False)
  assert 'attn1' in g_vars['params']  # G stage 1 ends at 16x16.
  assert {'block2_0', 'block2_1'} <= set(g_vars['params'])

  for train in (True, False):
    img, g_state = g.apply(g_vars, z, y, train=train, mutable=COLLECTIONS)
    assert img.shape == (n, resolution, resolution, 3)
    assert np.all(np.isfinite(img)) and np.all(np.abs(img) <= 1.0)
    assert np.std(img) > 0
    _assert_state({k: g_vars[k] for k in COLLECTIONS}, g_state, train)

  # Conditioning on a precomputed embedding is the same as on class ids.
  img = g.apply(g_vars, z, y, train=False)
  y_embed = g.apply(g_vars, y, method=g.embed_classes)
  np.testing.assert_allclose(g.apply(g_vars, z, y_embed=y_embed, train=False), img,
                             rtol=1e-6, atol=1e-6)

  d_vars = d.init({'params': kd}, img, y, train=False)
  d_attn_stage = biggan_deep.d_stage_resolutions(resolution).index(16)
  assert f'attn{d_attn_stage}' in d_vars['params']
  for train in (True, False):
    logits, d_state = d.apply(d_vars, img, y, train=train, mutable=['spectral'])
    assert logits.shape == (n,)
    assert np.all(np.isfinite(logits))
    _assert_state({'spectral': d_vars['spectral']}, d_state, train)


# ------------------------------------------------------- NumPy reference
def _normalize(x, eps=1e-6):
  return x / max(np.linalg.norm(x), eps)


def _sn(kernel, u):
  """W / sigma with one power step from u; W is the (out, -1) view."""
  kernel = np.asarray(kernel, np.float64)
  w = kernel.reshape(-1, kernel.shape[-1]).T
  u = np.asarray(u, np.float64)
  v = _normalize(u @ w)
  u = _normalize(v @ w.T)
  return kernel / (v @ w.T @ u.T).item()


def _conv(x, p, s):
  k = _sn(p['kernel'], s['sn']['u'])
  size, (n, h, w, _) = k.shape[0], x.shape
  xp = np.pad(x, ((0, 0), (size // 2,) * 2, (size // 2,) * 2, (0, 0)))
  out = sum(np.einsum('nhwc,co->nhwo', xp[:, i:i + h, j:j + w], k[i, j])
            for i in range(size) for j in range(size))
  return out + np.asarray(p['bias'], np.float64)


def _ccbn(x, c, p, s, b, eps=1e-5):
  gain = 1 + c @ _sn(p['gain']['kernel'], s['gain']['sn']['u'])
  bias = c @ _sn(p['bias']['kernel'], s['bias']['sn']['u'])
  mean, var = (np.asarray(b['stats'][k], np.float64) for k in ('mean', 'var'))
  h = (x - mean) / np.sqrt(var + eps)
  return h * gain[:, None, None, :] + bias[:, None, None, :]


def _relu(x):
  return np.maximum(x, 0)


def _up(x):
  return x.repeat(2, axis=1).repeat(2, axis=2)


def _pool(x):
  n, h, w, c = x.shape
  return x.reshape(n, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))


def _relative_error(got, want):
  return np.max(np.abs(np.asarray(got, np.float64) - want)) / np.max(np.abs(want))


def _random_stats(stats, key):
  """Running stats away from their (0, 1) init, so eval BN is exercised."""
  leaves, treedef = jax.tree_util.tree_flatten_with_path(stats)
  drawn = []
  for k, (path, leaf) in zip(jax.random.split(key, len(leaves)), leaves):
    if path[-1].key == 'var':
      drawn.append(jax.random.uniform(k, leaf.shape, minval=0.5, maxval=2.0))
    else:
      drawn.append(0.5 * jax.random.normal(k, leaf.shape))
  return jax.tree_util.tree_unflatten(treedef, drawn)


# The block tests use the shapes of blocks of the tiny 64x64 model above
# (G block3_1, D block1_0): the eager ops compiled there are reused.
def test_gblock_matches_numpy_bottleneck():
  sn = dict(sn_eps=1e-6)
  block = biggan_deep.GBlock(
      out_ch=16, upsample=True,
      bn=functools.partial(layers.ConditionalBatchNorm, 1e-5, 0.1, **sn),
      conv=functools.partial(layers.SNConv, **sn))
  kx, kc, ki, ks = jax.random.split(_key(1), 4)
  x = jax.random.normal(kx, (3, 32, 32, 32))
  c = jax.random.normal(kc, (3, 16))
  variables = dict(block.init({'params': ki}, x, c, False))
  variables['batch_stats'] = _random_stats(variables['batch_stats'], ks)
  got = block.apply(variables, x, c, False)

  p, s, b = variables['params'], variables['spectral'], variables['batch_stats']
  xn, cn = np.asarray(x, np.float64), np.asarray(c, np.float64)
  bn = lambda h, name: _relu(_ccbn(h, cn, p[name], s[name], b[name]))
  conv = lambda h, name: _conv(h, p[name], s[name])
  h = conv(bn(xn, 'bn1'), 'conv1')
  h = _up(bn(h, 'bn2'))
  h = conv(h, 'conv2')
  h = conv(bn(h, 'bn3'), 'conv3')
  h = conv(bn(h, 'bn4'), 'conv4')
  want = h + _up(xn[..., :16])
  assert got.shape == (3, 64, 64, 16)
  assert _relative_error(got, want) <= 1e-5


def test_dblock_matches_numpy_bottleneck():
  block = biggan_deep.DBlock(out_ch=32, downsample=True,
                             conv=functools.partial(layers.SNConv, sn_eps=1e-6))
  kx, ki = jax.random.split(_key(2))
  x = jax.random.normal(kx, (3, 32, 32, 16))
  variables = block.init({'params': ki}, x, False)
  got = block.apply(variables, x, False)

  p, s = variables['params'], variables['spectral']
  conv = lambda h, name: _conv(h, p[name], s[name])
  xn = np.asarray(x, np.float64)
  h = conv(_relu(xn), 'conv1')
  h = conv(_relu(h), 'conv2')
  h = _pool(_relu(conv(_relu(h), 'conv3')))
  h = conv(h, 'conv4')
  sc = _pool(xn)
  want = h + np.concatenate([sc, conv(sc, 'conv_sc')], -1)
  assert got.shape == (3, 16, 16, 32)
  assert _relative_error(got, want) <= 1e-5
