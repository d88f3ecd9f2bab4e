"""BigGAN G and D: exact parameter counts of the paper's models, and behaviour
of small ones (shapes, hierarchical z, class embeddings, bfloat16)."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from biggan_jax import config as config_lib
from biggan_jax import models
from biggan_jax.models import biggan


def param_count(module, *inputs):
  shapes = jax.eval_shape(
      lambda: module.init({'params': jax.random.key(0)}, *inputs, train=False))
  return sum(x.size for x in jax.tree.leaves(shapes['params']))


def jitted(method, train=False, **kwargs):
  """A module's init or apply as one compiled program: op by op, each primitive of a
  model compiles on its own (hundreds of compiles for a 64x64 G)."""
  return jax.jit(functools.partial(method, train=train, **kwargs))


def model_config(**overrides):
  m = config_lib.base_config().model
  m.update(overrides)
  return m


# BigGAN-PyTorch's counts (n_classes 1000, shared 128, hier): its BigGAN.py built with these
# arguments; the paper's Table 1 gives 158.3M for G + D at 128 / ch 96 and 71.3M at ch 64.
@pytest.mark.parametrize('resolution,ch,dim_z,g_attn,d_attn,g_params,d_params', [
    (128, 96, 120, '64', '64', 70_433_988, 87_982_370),
    (128, 64, 120, '64', '64', 31_978_628, 39_448_258),
    (256, 96, 140, '128', '64', 82_097_604, 99_225_890),
    (512, 96, 128, '64', '64', 82_296_804, None),
])
def test_parameter_counts_match_biggan_pytorch(resolution, ch, dim_z, g_attn, d_attn,
                                               g_params, d_params):
  m = model_config(resolution=resolution, ch=ch, dim_z=dim_z, g_attn=g_attn,
                   d_attn=d_attn)
  z, y = jnp.zeros((1, dim_z)), jnp.zeros((1,), jnp.int32)
  assert param_count(models.create_generator(m), z, y) == g_params
  if d_params is not None:
    x = jnp.zeros((1, resolution, resolution, 3))
    assert param_count(models.create_discriminator(m), x, y) == d_params


TINY = dict(ch=4, dim_z=16, shared_dim=8, num_classes=5)


@pytest.mark.parametrize('resolution,g_attn,d_attn',
                         [(16, '8', '8'), (32, '16', '16'), (64, '32', '16')])
def test_small_models_forward(resolution, g_attn, d_attn):
  m = model_config(resolution=resolution, g_attn=g_attn, d_attn=d_attn, **TINY)
  m.dim_z = 4 * (len(biggan.G_CHANNELS[resolution][0]) + 1)
  G, D = models.create_generator(m), models.create_discriminator(m)
  z = jax.random.normal(jax.random.key(0), (4, m.dim_z))
  y = jnp.arange(4) % 5
  gv = jitted(G.init)({'params': jax.random.key(1)}, z, y)
  img, g_state = jitted(G.apply, train=True, mutable=('batch_stats', 'spectral'))(gv, z, y)
  assert img.shape == (4, resolution, resolution, 3)
  assert float(jnp.abs(img).max()) <= 1.0 and bool(jnp.isfinite(img).all())
  assert 'attn' + str(int(np.log2(int(g_attn) // 8))) in gv['params']
  dv = jitted(D.init)({'params': jax.random.key(2)}, img, y)
  logits = jitted(D.apply)(dv, img, y)
  assert logits.shape == (4,) and bool(jnp.isfinite(logits).all())
  assert not np.allclose(g_state['batch_stats']['block0']['bn1']['stats']['mean'], 0.0)


def test_hierarchical_z_conditions_each_block_on_its_chunk():
  m = model_config(resolution=32, g_attn='', **TINY)
  G = models.create_generator(m)
  assert G.num_slots == 4 and G.z_chunk_size == 4
  z = jax.random.normal(jax.random.key(0), (2, 16))
  y = jnp.array([1, 2])
  v = jitted(G.init)({'params': jax.random.key(1)}, z, y)
  assert v['params']['linear']['kernel'].shape == (4, 4 * 4 * 4 * 4)
  assert v['params']['block2']['bn1']['gain']['kernel'].shape == (8 + 4, 16)
  apply = jitted(G.apply)
  base = apply(v, z, y)
  for chunk in range(4):  # every chunk reaches the image
    z2 = z.at[:, 4 * chunk:4 * chunk + 4].add(1.0)
    assert not np.allclose(apply(v, z2, y), base)


def test_flat_z_without_hierarchy():
  m = model_config(resolution=32, g_attn='', hierarchical_z=False, **TINY)
  G = models.create_generator(m)
  z, y = jnp.ones((2, 16)), jnp.array([0, 1])
  v = G.init({'params': jax.random.key(1)}, z, y, train=False)
  assert v['params']['linear']['kernel'].shape == (16, 256)
  assert v['params']['block0']['bn1']['gain']['kernel'].shape == (8, 16)


def test_class_embedding_path_matches_ids():
  m = model_config(resolution=16, g_attn='', dim_z=12, ch=4, shared_dim=8, num_classes=5)
  G = models.create_generator(m)
  z, y = jax.random.normal(jax.random.key(0), (3, 12)), jnp.array([0, 3, 4])
  v = G.init({'params': jax.random.key(1)}, z, y, train=False)
  emb = G.apply(v, y, method=G.embed_classes)
  np.testing.assert_array_equal(emb, v['params']['shared']['embedding'][y])
  np.testing.assert_allclose(G.apply(v, z, y, train=False),
                             G.apply(v, z, y_embed=emb, train=False), rtol=1e-6)


def test_bfloat16_compute_keeps_float32_params():
  m = model_config(resolution=32, g_attn='16', d_attn='16', **TINY)
  G32 = models.create_generator(m)
  m.dtype = 'bfloat16'
  G16, D16 = models.create_generator(m), models.create_discriminator(m)
  z, y = jax.random.normal(jax.random.key(0), (4, 16)), jnp.arange(4)
  v = jitted(G16.init)({'params': jax.random.key(1)}, z, y)
  assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(v['params']))
  img16 = jitted(G16.apply)(v, z, y)
  img32 = jitted(G32.apply)(v, z, y)
  assert img16.dtype == jnp.float32
  assert float(jnp.abs(img16 - img32).max()) < 0.05
  dv = jitted(D16.init)({'params': jax.random.key(2)}, img16, y)
  assert jitted(D16.apply)(dv, img16, y).dtype == jnp.float32
