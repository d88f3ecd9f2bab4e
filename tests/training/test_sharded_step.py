"""The one construction of the step (training/sharded_step.py) and its memory levers: FSDP
state sharding, per-block rematerialisation and uint8 images train like the
plain replicated step, and checkpoints move between the two layouts."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util
from jax.sharding import PartitionSpec as P

from biggan_jax import config as config_lib
from biggan_jax.checkpoints import run_checkpoints
from biggan_jax.data import fake
from biggan_jax.training import sharded_step, sharding
from biggan_jax.training import step as train_step
from paths import REPO

STEPS = 2


def tiny_config(**overrides):
  config = config_lib.from_file(REPO / 'configs' / 'tiny.py', **overrides)
  config.dataset.image_dtype = 'uint8'  # both runs see the same (quantised) pixels
  return config


def run(config, image_dtype):
  """STEPS steps of sharded_step.build's jitted init and step; the batch crosses as `image_dtype`."""
  train = sharded_step.build(config)
  state = train.init(jax.random.PRNGKey(config.seed))
  history = []
  for i in range(STEPS):
    batch = fake.fake_batch(config, i, 0)
    if image_dtype == 'float32':
      batch['image'] = train_step.to_float(batch['image']).astype(np.float32)
    state, metrics = train.step(state, sharding.host_to_global(batch, train.mesh, 2))
    history.append(jax.device_get(metrics))
  return train, state, history


@pytest.fixture(scope='module')
def runs():
  """Replicated float32 images vs FSDP + remat('nothing_saveable') + uint8 images."""
  plain = run(tiny_config(), 'float32')
  config = tiny_config(fsdp=True)
  config.model.remat = 'nothing_saveable'
  with pytest.MonkeyPatch.context() as patch:  # the tiny model's kernels are all < 2**14
    patch.setattr(sharding, 'FSDP_MIN_SIZE', 1024)
    levers = run(config, 'uint8')
  return plain, levers, config


def _pre_bn_bias(path):
  return path[-1] == 'bias' and path[-2].startswith('conv') and path[0].startswith('block')


def test_levers_train_to_the_same_state(runs):
  """The tolerances of test_loop.py's 8-vs-1-device test: rel 1e-5, and Adam's bound for
  G's pre-BN conv biases, whose true gradient is 0 (rounding noise becomes lr steps)."""
  (_, a, ha), (_, b, hb), config = runs
  for m1, m2 in zip(ha, hb):
    for k in ('d_loss_real', 'd_loss_fake', 'g_loss', 'd_real', 'd_fake'):
      assert abs(m1[k] - m2[k]) <= 1e-5 * abs(m1[k]) + 1e-7, k
  checked = 0
  for tree in ('g_params', 'd_params', 'g_state', 'd_state', 'ema_params'):
    x_tree = traverse_util.flatten_dict(jax.device_get(getattr(a, tree)))
    y_tree = traverse_util.flatten_dict(jax.device_get(getattr(b, tree)))
    for path, x in x_tree.items():
      x, y = np.asarray(x), np.asarray(y_tree[path])
      if (tree in ('g_params', 'ema_params') and _pre_bn_bias(path)) or (
          tree == 'g_state' and path[-1] == 'mean'):
        assert np.abs(x - y).max() <= 2 * STEPS * config.lr_g, (tree, path)
      else:
        assert np.abs(x - y).max() <= 1e-5 * np.abs(x).max() + 1e-9, (tree, path)
        checked += 1
  assert checked > 50


def test_fsdp_shards_weights_adam_and_ema_only(runs):
  (plain, a, _), (levers, b, _), _ = runs
  assert all(x.sharding.spec == P() for x in jax.tree.leaves(a))
  kernel = b.g_params['block0']['conv1']['kernel']           # (3, 3, 16, 16): the last axis
  assert kernel.sharding.spec == P(None, None, None, 'data')
  assert kernel.addressable_shards[0].data.shape == (3, 3, 16, 2)
  assert b.g_opt_state[0].mu['block0']['conv1']['kernel'].sharding.spec != P()
  assert b.ema_params['block0']['conv1']['kernel'].sharding.spec != P()
  for small in (b.g_params['block0']['conv1']['bias'], b.step, b.g_state, b.sv):
    assert all(x.sharding.spec == P() for x in jax.tree.leaves(small))
  # ZeRO's saving: the sharded state is 1/8 on each device, up to the small leaves.
  per_device = lambda s: sum(x.addressable_shards[0].data.nbytes for x in jax.tree.leaves(s))
  assert per_device(b) < 0.3 * per_device(a)


def test_remat_and_uint8_are_in_the_step(runs):
  _, (levers, b, _), config = runs
  batch = sharded_step.abstract_batch(config, levers)
  assert batch['image'].dtype == jnp.uint8
  assert batch['image'].shape == (2, 1, 8, 32, 32, 3) and batch['label'].shape == (2, 1, 8)
  jaxpr = str(jax.make_jaxpr(levers.step)(sharded_step.abstract_state(levers), batch))
  assert 'checkpoint' in jaxpr or 'remat' in jaxpr


@pytest.mark.parametrize('saved, target', [('levers', 'plain'), ('plain', 'levers')])
def test_checkpoint_restores_into_the_other_layout(runs, tmp_path, saved, target):
  named = {'plain': runs[0], 'levers': runs[1]}
  source_state, target_train = named[saved][1], named[target][0]
  mngr = run_checkpoints.manager(tmp_path / 'ckpt')
  run_checkpoints.save(mngr, STEPS, source_state, {'params': source_state.ema_params}, {'step': STEPS})
  mngr.wait_until_finished()
  like = target_train.init(jax.random.PRNGKey(1))
  restored, meta = run_checkpoints.restore_state(mngr, STEPS, like)
  assert meta['step'] == STEPS
  for got, want, layout in zip(jax.tree.leaves(restored), jax.tree.leaves(source_state),
                               jax.tree.leaves(like)):
    assert got.sharding == layout.sharding
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
