"""The training engine on the tiny config: mesh equivalence, the options
training with them, accumulation, EMA and standing stats. Restarts and faults
are in test_loop_resume.py."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from biggan_jax import config as config_lib
from biggan_jax import models
from biggan_jax.data import fake
from biggan_jax.training import ema, sharded_step, sharding
from biggan_jax.training import step as train_step
from paths import REPO


def tiny_config(**overrides):
  return config_lib.from_file(REPO / 'configs' / 'tiny.py', **overrides)


def run_steps(config, mesh, num_steps, states=None):
  """The loop's core without I/O: create, then num_steps jitted steps.

  With a list `states`, the state after every step is appended to it.
  """
  train = sharded_step.build(config, mesh.devices.ravel())  # the loop's own construction
  state = train.init(jax.random.PRNGKey(config.seed))
  step_fn = train.step
  history = []
  for i in range(num_steps):
    batch = sharding.host_to_global(fake.fake_batch(config, i, 0), mesh, 2)
    state, metrics = step_fn(state, batch)
    history.append(jax.device_get(metrics))
    if states is not None:
      states.append(jax.device_get(state))
  return state, history


def max_rel(a, b):
  return max(float(np.abs(np.asarray(x) - np.asarray(y)).max() / (np.abs(np.asarray(y)).max() + 1e-12))
             for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def _pre_bn_bias(path):
  """G conv biases that feed a BatchNorm: their true gradient is exactly 0."""
  return path[-1] == 'bias' and path[-2].startswith('conv') and path[0].startswith('block')


def test_8_devices_match_1_device():
  """Cross-replica BN + all-reduced grads: the mesh changes nothing numerically.

  Every weight and statistic agrees to rel 1e-5, except G's pre-BN conv
  biases: BN removes them, so their gradient is rounding noise (~1e-9) that
  Adam (β1 = 0) turns into steps of size lr whichever the device count. For
  those the test checks Adam's bound, num_steps * lr per step taken; the BN
  running means that record those biases get the same bound. The attention
  gains (scalars, 0 at init) move by Adam steps of about lr whose size is a
  ratio of gradient sums over every position and channel; those sums cancel,
  so the reduction order moves G's by ~1e-4 of a step (rel 2e-5 of the gain
  after 2 steps on an AMD EPYC host): checked to 1e-3 of lr per step.
  """
  from flax import traverse_util
  config = tiny_config()
  steps = 2
  one, h1 = run_steps(config, sharding.make_mesh(jax.devices()[:1]), steps)
  eight, h8 = run_steps(config, sharding.make_mesh(jax.devices()), steps)
  for m1, m8 in zip(h1, h8):
    for k in ('d_loss_real', 'd_loss_fake', 'g_loss', 'd_real', 'd_fake'):
      assert abs(m1[k] - m8[k]) <= 1e-5 * abs(m1[k]) + 1e-7, k
  checked = 0
  for tree in ('g_params', 'd_params', 'g_state', 'd_state'):
    a = traverse_util.flatten_dict(getattr(one, tree))
    b = traverse_util.flatten_dict(getattr(eight, tree))
    for path, x in a.items():
      x, y = np.asarray(x), np.asarray(b[path])
      bias_noise = ((tree == 'g_params' and _pre_bn_bias(path))
                    or (tree == 'g_state' and path[-1] == 'mean'))
      if bias_noise:
        assert np.abs(x - y).max() <= 2 * steps * config.lr_g, path
      elif path[-1] == 'gamma':
        lr = config.lr_g if tree == 'g_params' else config.lr_d
        assert np.abs(x - y).max() <= 1e-3 * steps * lr, (tree, path)
      else:
        assert np.abs(x - y).max() <= 1e-5 * np.abs(x).max() + 1e-9, (tree, path)
        checked += 1
  assert checked > 50


def test_options_train_and_stay_finite():
  """Also the σ0 remedies (App. F): the clamp set the top singular value of every G weight
  (all near 1 after one step from orthogonal init) to σ_clamp = 0.9; the others stay."""
  config = tiny_config(loss='non_saturating', r1=True, ortho_beta_d=1e-4,
                       num_accumulations=2, num_d_steps=1, batch_size=32, mode_seeking=1.0,
                       sigma0_penalty=0.1, sigma0_clamp=True, sigma0_target=0.9)
  state, history = run_steps(config, sharding.make_mesh(), 1)
  assert all(np.isfinite(v) for v in history[-1].values())
  assert history[-1]['r1'] > 0 and history[-1]['mode_seeking'] > 0
  assert history[-1]['sigma0_penalty'] > 0 and history[-1]['finite']
  from biggan_jax.training import regularizers
  spectra = {name: np.linalg.svd(np.asarray(w, np.float64), compute_uv=False)
             for name, w in regularizers.weight_matrices(state.g_params, ('shared',)).items()}
  assert len(spectra) > 10
  for name, s in spectra.items():
    assert np.abs(s - 0.9).min() < 1e-4 and s.max() > 0.95, (name, s)


def test_lazy_r1_ema_rampup_and_ada_in_one_step():
  """r1_every=2: R1 on D steps 0, 2, ... only (γ·2); ema_rampup: the EMA copies G at
  step 0 (half-life 0 images); ADA: p starts at 0, is logged, and moves after the
  first interval by the images seen toward ada_target from sign(D(x_real)). With the
  Wasserstein loss, so that one compile covers it too."""
  config = tiny_config(loss='wasserstein', r1=True, r1_every=2, num_d_steps=1, ema_rampup=0.05, ema_start=0,
                       augment='translation,cutout', augment_adaptive=True, ada_interval=1,
                       ada_kimg=0.004)  # one step moves p by 8 / 4 = 2: to 2 or 0
  states = []
  _, history = run_steps(config, sharding.make_mesh(), 2, states)
  assert history[0]['r1'] > 0 and history[1]['r1'] == 0  # D steps 0 and 1
  for e, g in zip(jax.tree.leaves(states[0].ema_params), jax.tree.leaves(states[0].g_params)):
    np.testing.assert_array_equal(e, g)
  assert history[0]['augment_p'] == 0
  expected = max(0.0, np.sign(history[0]['d_real_sign'] - 0.6) * 2.0)
  assert float(states[0].ada.p) == expected == history[1]['augment_p']
  assert all(np.isfinite(v) for h in history for v in h.values())


def test_singular_values_tracked_every_sv_every_steps():
  """configs/tiny.py as it is (sv_every 2): the program test_8_devices_match_1_device compiled."""
  config = tiny_config()
  assert config.sv_every == 2
  states = []
  run_steps(config, sharding.make_mesh(), 3, states)
  s1, s2, s3 = states  # the 2nd step tracks; the 3rd keeps its values
  name = 'G/block0/conv1/kernel'
  assert float(s1.sv[name][0]) == 0.0
  assert float(s2.sv[name][0]) > 0
  np.testing.assert_array_equal(s3.sv[name], s2.sv[name])
  # What is tracked is σ of the weights of that moment (after the 2nd update).
  w = np.asarray(s2.g_params['block0']['conv1']['kernel'])
  sigma = np.linalg.svd(w.reshape(-1, w.shape[-1]).T, compute_uv=False)
  np.testing.assert_allclose(s2.sv[name], sigma[:3], rtol=1e-3)


def test_accumulate_averages_micro_batch_gradients():
  loss = lambda w, s, x: (jnp.sum((w * x) ** 2), (s + 1, {'x': x.sum()}))
  xs = jnp.arange(12.0).reshape(3, 4)
  grads, s, metrics = train_step._accumulate(loss, jnp.ones(4), 0, (xs,))
  np.testing.assert_allclose(grads, np.mean(2 * np.asarray(xs) ** 2, 0), rtol=1e-6)
  assert int(s) == 3 and float(metrics['x']) == pytest.approx(float(xs.sum(1).mean()))


def test_ema_decay_zero_before_start():
  """Iterations counted from 1, as upstream's itr: iteration 4 of ema_start 5 copies G,
  iteration 5 decays."""
  e, p = {'w': jnp.zeros(3)}, {'w': jnp.ones(3)}
  np.testing.assert_array_equal(ema.update(e, p, 4, 0.9, start=5)['w'], 1.0)
  np.testing.assert_allclose(ema.update(e, p, 5, 0.9, start=5)['w'], 0.1, rtol=1e-6)


def test_the_step_counts_ema_start_as_upstream():
  """ema_start=2 in BigGAN-PyTorch: its first iteration (itr 1) copies G into the EMA, the
  second (itr 2) already decays. The step's state.step is 0-based: the first step is
  iteration 1."""
  config = tiny_config(ema_start=2, ema_decay=0.5, num_d_steps=1)
  config.model.update(resolution=16, g_attn='', d_attn='')
  states = []
  run_steps(config, sharding.make_mesh(), 2, states)
  first, second = states
  for e, g in zip(jax.tree.leaves(first.ema_params), jax.tree.leaves(first.g_params)):
    np.testing.assert_array_equal(e, g)
  moved = [(e, g, e0) for e, g, e0 in zip(jax.tree.leaves(second.ema_params),
                                          jax.tree.leaves(second.g_params),
                                          jax.tree.leaves(first.ema_params))
           if not np.array_equal(g, e0)]
  assert len(moved) > 10
  for e, g, e0 in moved:
    np.testing.assert_allclose(e, 0.5 * e0 + 0.5 * g, rtol=1e-5, atol=1e-7)


def test_standing_stats_average_batch_statistics():
  config = tiny_config()
  m = config.model
  G = models.create_generator(m)
  v = G.init({'params': jax.random.PRNGKey(0)}, jnp.zeros((2, 16)), jnp.zeros((2,), jnp.int32),
             train=False)
  out = ema.standing_stats(G, v, jax.random.PRNGKey(1), num_passes=3, batch_size=4,
                           dim_z=16, num_classes=5)
  means, variances = [], []
  for key in jax.random.split(jax.random.PRNGKey(1), 3):
    kz, ky = jax.random.split(key)
    z, y = jax.random.normal(kz, (4, 16)), jax.random.randint(ky, (4,), 0, 5)
    # BN input of the output layer = G's last block output: read it via momentum 1.
    _, st = G.clone(bn_momentum=1.0).apply(v, z, y, train=True,
                                           mutable=['batch_stats', 'spectral'])
    means.append(st['batch_stats']['output_bn']['stats']['mean'])
    variances.append(st['batch_stats']['output_bn']['stats']['var'])
  got = out['batch_stats']['output_bn']['stats']
  np.testing.assert_allclose(got['mean'], np.mean(means, 0), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(got['var'], np.mean(variances, 0), rtol=1e-5)
  np.testing.assert_array_equal(out['spectral']['linear']['sn']['u'],
                                v['spectral']['linear']['sn']['u'])
