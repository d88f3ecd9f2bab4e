"""biggan_jax is BigGAN, numerically: the author's tiny G and D, loaded through
the checkpoint mapping, reproduce every output, state update and loss.

Fixtures (BigGAN-PyTorch @98459431, float64, made by its own modules; keys in
tests/testdata/README.md), each run in float32 with tolerance rel 1e-4:
- tiny64: BigGAN.py, G_ch=D_ch=4, resolution 64, hier, attention G 32 / D 16;
- unshared32: BigGAN.py with G_shared=False, hier=False (per-BN class tables),
  resolution 32, as scripts/launch_cifar_ema.sh trains it;
- deep64: BigGANdeep.py, G_ch=D_ch=8, depth 2, resolution 64, attention 32.
Each pass is jitted, as training and sampling run it (op by op, every primitive
of a model would compile on its own).
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util

from biggan_jax import models
from biggan_jax.training import losses
from biggan_jax.convert import biggan_pytorch as bp
from paths import TESTDATA

FIXTURES = ('tiny64', 'unshared32', 'deep64')
RTOL = 1e-4


def rel_err(a, b):
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  scale = np.abs(b).max()
  return np.abs(a - b).max() / (scale if scale > 0 else 1.0)


def nchw(a):
  return np.asarray(a).transpose(0, 3, 1, 2)


@functools.cache
def load_fixture(name):
  """The fixture `name`, its model and its state dicts mapped onto our variables."""
  d = np.load(TESTDATA / f'biggan_pytorch_{name}_f64.npz')
  cfg = eval(str(d['config']), {})  # a dict literal written by the fixture script
  m = bp.model_config_from_pytorch(cfg)
  G, D = models.create_generator(m), models.create_discriminator(m)
  z = jnp.asarray(d['z'], jnp.float32)
  y = jnp.asarray(d['y'], jnp.int32)
  x = jnp.asarray(d['x_nchw'].transpose(0, 2, 3, 1), jnp.float32)
  sd = lambda p: {k[len(p) + 1:]: d[k] for k in d.files if k.startswith(p + '/')}
  g_exp, d_exp = bp.expected_variables(G, z, y), bp.expected_variables(D, x, y)
  to_g = lambda p: bp.to_variables(sd(p), g_exp, generator=True, model=m)
  to_d = lambda p: bp.to_variables(sd(p), d_exp, generator=False, model=m)
  return dict(
      name=name, d=d, m=m, G=G, D=D, z=z, y=y, x=x,
      g_init=to_g('G_init'), d_init=to_d('D_init'),
      g_after=to_g('G_after_train_fwd'), d_after=to_d('D_after_train_fwd'))


@pytest.fixture(scope='module', params=FIXTURES)
def ref(request):
  return load_fixture(request.param)


@pytest.fixture(scope='module')
def train_pass(ref):
  """g = G(z, y); D(x, y); D(g, y), all in train mode, as the fixture did."""
  G, D = ref['G'], ref['D']
  g_train = jax.jit(functools.partial(G.apply, train=True, mutable=['batch_stats', 'spectral']))
  d_train = jax.jit(functools.partial(D.apply, train=True, mutable=['spectral']))
  g, g_state = g_train(ref['g_init'], ref['z'], ref['y'])
  d_real, d_state = d_train(ref['d_init'], ref['x'], ref['y'])
  d_fake, d_state = d_train({**ref['d_init'], **d_state}, g, ref['y'])
  return dict(g=g, g_vars={**ref['g_init'], **g_state}, d_real=d_real,
              d_fake=d_fake, d_vars={**ref['d_init'], **d_state})


def test_model_config_from_fixture(ref):
  G, D, m = ref['G'], ref['D'], ref['m']
  if ref['name'] == 'tiny64':
    assert G.resolution == 64 and G.ch == 4 and G.dim_z == 20
    assert G.z_chunk_size == 4 and tuple(G.attn) == (32,)
    assert tuple(D.attn) == (16,)
  elif ref['name'] == 'unshared32':
    assert (m.family, G.resolution, G.ch, G.dim_z, G.num_classes) == ('biggan', 32, 8, 16, 10)
    assert not G.shared_embedding and not G.hierarchical_z and G.attn == D.attn == ()
    block = ref['g_init']['params']['block0']['bn1']
    assert block['gain']['embedding'].shape == (10, 32)
    assert 'bn1' not in ref['g_init']['spectral']['block0']  # the class tables have no SN
    assert 'shared' not in ref['g_init']['params']
  else:
    assert (m.family, m.g_depth, m.d_depth, G.resolution, G.ch, G.dim_z, G.shared_dim) == (
        'biggan_deep', 2, 2, 64, 8, 24, 8)
    assert tuple(G.attn) == tuple(D.attn) == (32,)
    assert {'attn2', 'block3_1'} <= set(ref['g_init']['params'])
    assert {'attn0', 'block0_1', 'input_conv'} <= set(ref['d_init']['params'])


def test_deep_columns_are_permuted_to_z_first():
  """Upstream's deep c is [shared(y) (8), z (24)]: our rows [z, y] are its columns
  [8:] then [:8], and the permutation leaves u (output side) as it is."""
  ref = load_fixture('deep64')
  d = ref['d']
  w = d['G_init/blocks.0.0.bn1.gain.weight']  # (C, 8 + 24)
  ours = ref['g_init']['params']['block0_0']['bn1']['gain']['kernel']
  np.testing.assert_array_equal(ours, np.concatenate([w[:, 8:], w[:, :8]], 1).T.astype(
      np.float32))
  np.testing.assert_array_equal(ref['g_init']['spectral']['block0_0']['bn1']['gain']['sn']['u'],
                                d['G_init/blocks.0.0.bn1.gain.u0'].astype(np.float32))


def test_generator_train_output(ref, train_pass):
  err = rel_err(nchw(train_pass['g']), ref['d']['G_train_out_nchw'])
  print(f"{ref['name']}: G train-mode output rel err {err:.1e}")
  assert err < RTOL


def test_discriminator_train_outputs(ref, train_pass):
  real = rel_err(train_pass['d_real'], ref['d']['D_real_train'][:, 0])
  fake = rel_err(train_pass['d_fake'], ref['d']['D_fake_train'][:, 0])
  print(f"{ref['name']}: D train-mode real / fake rel err {real:.1e} / {fake:.1e}")
  assert real < RTOL and fake < RTOL


@pytest.mark.parametrize('net', ['g', 'd'])
def test_state_after_train_pass(ref, train_pass, net):
  """SN vectors u, stored sigmas and BN running stats advance as upstream."""
  mine = traverse_util.flatten_dict(train_pass[f'{net}_vars'])
  want = traverse_util.flatten_dict(ref[f'{net}_after'])
  assert mine.keys() == want.keys()
  init = traverse_util.flatten_dict(ref[f'{net}_init'])
  moved, worst = 0, 0.0
  for key, value in want.items():
    err = rel_err(mine[key], value)
    assert err < RTOL, '/'.join(key)
    worst = max(worst, err)
    moved += key[0] != 'params' and rel_err(init[key], value) > 1e-3
  print(f"{ref['name']}: {net.upper()} state after the train pass, worst rel err {worst:.1e}")
  assert moved > 10  # the fixture's state really moved, so this test has teeth


def test_hinge_losses(ref, train_pass):
  real, fake = losses.d_loss('hinge', train_pass['d_real'], train_pass['d_fake'])
  assert rel_err(real, ref['d']['loss_D_real']) < RTOL
  assert rel_err(fake, ref['d']['loss_D_fake']) < RTOL
  assert rel_err(losses.g_loss('hinge', train_pass['d_fake']),
                 ref['d']['loss_G']) < RTOL


def test_eval_mode_outputs(ref):
  """Eval: BN uses running stats, SN takes one unstored power step."""
  g = jax.jit(functools.partial(ref['G'].apply, train=False))(ref['g_after'], ref['z'], ref['y'])
  d = jax.jit(functools.partial(ref['D'].apply, train=False))(ref['d_after'], ref['x'], ref['y'])
  g_err = rel_err(nchw(g), ref['d']['G_eval_out_nchw'])
  d_err = rel_err(d, ref['d']['D_eval_real'][:, 0])
  print(f"{ref['name']}: eval-mode G / D rel err {g_err:.1e} / {d_err:.1e}")
  assert g_err < RTOL and d_err < RTOL


def test_mismatched_config_is_one_clear_error():
  ref = load_fixture('tiny64')
  m = bp.model_config_from_pytorch(eval(str(ref['d']['config']), {}))
  m.ch = 8
  G = models.create_generator(m)
  d = ref['d']
  sd = {k[len('G_init/'):]: d[k] for k in d.files if k.startswith('G_init/')}
  with pytest.raises(bp.ConversionError, match='shape'):
    bp.to_variables(sd, bp.expected_variables(G, ref['z'], ref['y']), generator=True)
  sd.pop('linear.bias')
  with pytest.raises(bp.ConversionError, match='missing'):
    bp.to_variables(sd, bp.expected_variables(ref['G'], ref['z'], ref['y']),
                    generator=True)
