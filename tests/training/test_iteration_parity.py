"""biggan_jax's train step is BigGAN-PyTorch's training iteration, in float64.

The fixtures (tests/testdata/biggan_pytorch_iteration_{plain,accum}_f64.npz, written by
tests/biggan_pytorch_iteration_fixture.py from upstream's own
train_fns.GAN_training_function @98459431; keys in tests/testdata/README.md) hold a tiny
G and D, the real batches, the z and y upstream drew inside each iteration, and after
iterations 1 and 2 the losses, both networks' state dicts (weights, SN u0/sv0, BN stored
statistics), both Adam states and G_ema's state dict:
- plain: 2 D steps, G's modified ortho reg in upstream's gradient form (utils.ortho after
  backward; ours: ortho_reference_grad=True), Adam (0, 0.999, eps 1e-6), EMA copying at
  iteration 1 and decaying at 2 (ema_start 2);
- accum: 1 D step, num_D_accumulations = num_G_accumulations = 2 against our
  num_accumulations 2 (BN and SN state threading through the micro-batches), no ortho.

Here the converted weights go through `step.make_train_step` under jax x64 (the models
built with dtype float64), jitted once per fixture and called for both iterations.

The one seam: our step draws z and y from its key (step._sample_latents(key, ...)). The
test replaces that function with one that returns upstream's draw for the same call: it
finds the key among the keys the step derives (fold_in(state.rng, step), split into one
per D step and one for G, as step.py's train_step does) and returns NaN if none matches
(so a change of that derivation fails loudly here rather than comparing other z).
Nothing else of the step is changed.

Tolerances (float64; observed values are printed with -s):
- losses, BN statistics, SN u and sigma: RTOL 1e-10 of the tensor's largest value (of 1
  for the statistics). Observed: losses ≤ 3e-15 relative, the state ≤ 1e-15; the margin
  is for other summation orders (BLAS, XLA versions), not for any modelling difference.
- Adam's moments are the gradients (beta1 = 0: exp_avg is the last gradient, exp_avg_sq
  (1 - beta2) g² plus the decayed previous value), compared at the size of the gradients,
  not element-wise: |diff| ≤ RTOL · max|tensor| + NOISE_FLOOR · max|network's moment|.
  The second term is for G's conv biases whose output reaches only a BN: their true
  gradient is 0 and both sides hold rounding noise (~1e-16 of the largest gradient),
  equal in size and different in value. Observed: ≤ 3e-4 of this bound.
- weights after Adam: Adam's first steps are about lr · sign(g) (beta1 = 0, m̂/sqrt(v̂)
  = sign(g) at step 1), so weights are compared in units of lr: |diff| ≤ LR_UNITS · lr
  (+ RTOL · max|tensor|). A relative gradient error δ moves a step by ≲ lr · δ; the noise
  gradients above move their biases by lr · g / eps ~ 1e-10 lr. Observed: ≤ 2e-9 lr
  (those biases). LR_UNITS 1e-6 is far below any real disagreement: a sign flip is 2 lr,
  and leaving out the ortho term (plain) moves G's weights by up to 2 lr and its moments
  by 150% (checked by hand when this test was written).
  (optax's bias correction 1 - beta2^t is float32 in float32 runs; under x64 here it is
  float64, as torch's.)
- the EMA is a fixed linear map of the weights: the weights' bound.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util

from biggan_jax import config as config_lib
from biggan_jax import models
from biggan_jax.convert import biggan_pytorch as bp
from biggan_jax.training import state as train_state
from biggan_jax.training import step as train_step
from paths import TESTDATA

VARIANTS = ('plain', 'accum')
ITERATIONS = (1, 2)
RTOL = 1e-10       # of a tensor's largest value: losses, BN stats, SN u / sigma, moments.
NOISE_FLOOR = 1e-12  # moments: plus this of the network's largest moment (rounding noise).
LR_UNITS = 1e-6    # weights after Adam and the EMA: |diff| <= LR_UNITS * lr + RTOL * scale.


def _config(cfg, m):
  """Our config for the fixture's upstream run: upstream's batch_size is the micro-batch."""
  config = config_lib.base_config()
  config.model = m
  acc = cfg['num_D_accumulations']
  assert cfg['num_G_accumulations'] == acc  # our one num_accumulations serves both.
  config.batch_size = cfg['batch_size'] * acc
  config.num_accumulations = acc
  config.num_d_steps = cfg['num_D_steps']
  config.lr_g, config.lr_d = cfg['G_lr'], cfg['D_lr']
  config.b1_g, config.b1_d, config.b2_g, config.b2_d = (
      cfg['G_B1'], cfg['D_B1'], cfg['G_B2'], cfg['D_B2'])
  config.eps_g = config.eps_d = cfg['adam_eps']
  config.ortho_beta = cfg['G_ortho']
  config.ortho_reference_grad = True  # utils.ortho adds the gradient 2β((WWᵀ)⊙(1−I))W.
  config.ema_decay, config.ema_start = cfg['ema_decay'], cfg['ema_start']
  config.sv_every = 1000  # tracking only; not due in iterations 1, 2.
  return config


def _replay_sampler(rng0, iterations, num_d_steps, z_draws, y_draws):
  """A stand-in for step._sample_latents returning upstream's draws (module docstring).

  z_draws[t]: (num_d_steps + 1, acc, micro, dim_z), the D steps' then G's, of iteration
  t + 1; y_draws[t] likewise (acc, micro)."""
  keys = jnp.stack([jax.random.split(jax.random.fold_in(rng0, t), num_d_steps + 1)
                    for t in range(iterations)])           # (T, num_d_steps + 1, 2)
  z_table = jnp.asarray(np.concatenate(z_draws))         # (T * (nd + 1), acc, micro, dim_z)
  y_table = jnp.asarray(np.concatenate(y_draws), jnp.int32)

  def sample(rng, shape, dim_z, num_classes, sharding):
    del dim_z, num_classes, sharding
    hit = jnp.all(keys == rng, axis=-1).reshape(-1)
    i = jnp.argmax(hit)
    z = jnp.where(hit.any(), z_table[i], jnp.nan)
    assert z.shape[:-1] == tuple(shape), (z.shape, shape)
    return z, y_table[i]

  return sample


def _nets(d, prefix, g_exp, d_exp, m):
  sd = lambda p: {k[len(p) + 1:]: d[k] for k in d.files if k.startswith(p + '/')}
  to = lambda p, exp, gen: bp.to_variables(sd(p), exp, generator=gen, model=m,
                                           dtype=np.float64)
  if not prefix:  # the initial state dicts
    return dict(G=to('G_init', g_exp, True), D=to('D_init', d_exp, False))
  # After an iteration: both networks, the EMA G and Adam's moments (mapped like the
  # weights they belong to: transposed, G's first linear permuted to NHWC).
  out = dict(G=to(f'{prefix}G', g_exp, True), D=to(f'{prefix}D', d_exp, False),
             G_ema=to(f'{prefix}G_ema', g_exp, True))
  for net, exp, gen in (('G', g_exp, True), ('D', d_exp, False)):
    for moment in ('exp_avg', 'exp_avg_sq'):
      out[f'{net}_{moment}'] = to(f'{prefix}{net}_{moment}',
                                  {'params': exp['params']}, gen)['params']
  return out


@functools.cache
def run(variant):
  """Both iterations of our step on the fixture; everything as float64 numpy."""
  d = np.load(TESTDATA / f'biggan_pytorch_iteration_{variant}_f64.npz')
  cfg = eval(str(d['config']), {})  # a dict literal written by the fixture script
  m = bp.model_config_from_pytorch(cfg)
  m.dtype = 'float64'
  config = _config(cfg, m)
  nd, acc, micro = config.num_d_steps, config.num_accumulations, cfg['batch_size']
  T = cfg['iterations']
  with jax.enable_x64(True):
    G, D = models.create_generator(m), models.create_discriminator(m)
    z0 = jnp.zeros((1, m.dim_z))
    y0 = jnp.zeros((1,), jnp.int32)
    x0 = jnp.zeros((1, m.resolution, m.resolution, 3))
    g_exp, d_exp = bp.expected_variables(G, z0, y0), bp.expected_variables(D, x0, y0)
    init = _nets(d, '', g_exp, d_exp, m)
    as_jnp = lambda t: jax.tree.map(jnp.asarray, t)
    params = lambda v: as_jnp(v['params'])
    others = lambda v: as_jnp({k: c for k, c in v.items() if k != 'params'})
    g_params, d_params = params(init['G']), params(init['D'])
    g_state, d_state = others(init['G']), others(init['D'])
    g_tx, d_tx = train_state.optimizers(config)
    rng = jax.random.PRNGKey(0)
    state = train_state.TrainState(
        step=jnp.zeros((), jnp.int32), rng=rng,
        g_params=g_params, g_state=g_state, g_opt_state=g_tx.init(g_params),
        d_params=d_params, d_state=d_state, d_opt_state=d_tx.init(d_params),
        ema_params=g_params, ema_state=g_state,
        sv=jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), jax.eval_shape(
            train_state.track_singular_values, g_params, d_params)))
    draws = lambda key, tail: [d[f'it{t}/{key}'].reshape(nd + 1, acc, micro, *tail)
                               for t in range(1, T + 1)]
    sampler = _replay_sampler(rng, T, nd, draws('z_draws', (m.dim_z,)), draws('y_draws', ()))
    with pytest.MonkeyPatch.context() as patch:
      patch.setattr(train_step, '_sample_latents', sampler)
      step = jax.jit(train_step.make_train_step(config, G, D, latent_sharding=None))
    results = []
    for t in range(1, T + 1):
      x = d[f'it{t}/x_uint8_nchw'].astype(np.float64) / 127.5 - 1  # as the fixture made it
      x = x.reshape(nd, acc, micro, 3, m.resolution, m.resolution).transpose(0, 1, 2, 4, 5, 3)
      batch = {'image': jnp.asarray(x), 'label': jnp.asarray(
          d[f'it{t}/y'].reshape(nd, acc, micro), jnp.int32)}
      assert batch['image'].dtype == jnp.float64
      state, metrics = step(state, batch)
      assert bool(metrics['finite']), 'non-finite: did the replay sampler miss a key?'
      adam = lambda s: s[0]  # optax.adam: (ScaleByAdamState, EmptyState)
      results.append(jax.device_get(dict(
          metrics=metrics,
          G={'params': state.g_params, **state.g_state},
          D={'params': state.d_params, **state.d_state},
          G_ema={'params': state.ema_params, **state.ema_state},
          G_exp_avg=adam(state.g_opt_state).mu, G_exp_avg_sq=adam(state.g_opt_state).nu,
          D_exp_avg=adam(state.d_opt_state).mu, D_exp_avg_sq=adam(state.d_opt_state).nu,
          G_adam_step=adam(state.g_opt_state).count,
          D_adam_step=adam(state.d_opt_state).count)))
    assert all(leaf.dtype != np.float32 for leaf in jax.tree.leaves(results))
  refs = [_nets(d, f'it{t}/', g_exp, d_exp, m) for t in range(1, T + 1)]
  return dict(d=d, cfg=cfg, config=config, init=init, ours=results, refs=refs)


@pytest.fixture(scope='module', params=VARIANTS)
def variant(request):
  return request.param


def _flat(tree):
  return {'/'.join(k): np.asarray(v, np.float64)
          for k, v in traverse_util.flatten_dict(tree).items()}


def _check(name, ours, ref, tol_fn):
  """Compares flat trees leaf by leaf; returns the worst error ratio (err / tolerance)."""
  ours, ref = _flat(ours), _flat(ref)
  assert ours.keys() == ref.keys(), name
  worst, where = 0.0, None
  for key, want in ref.items():
    err = np.abs(ours[key] - want).max()
    tol = tol_fn(key, want)
    assert err <= tol, f'{name} {key}: |diff| {err:.2e} > {tol:.2e}'
    if err / tol > worst:
      worst, where = err / tol, key
  return worst, where


@pytest.mark.parametrize('it', ITERATIONS)
def test_losses(variant, it):
  """D's hinge terms averaged over D steps and micro-batches, G's over micro-batches:
  upstream returns only the last micro-batch's, the fixture keeps each."""
  r = run(variant)
  d, metrics = r['d'], r['ours'][it - 1]['metrics']
  for ours, theirs in (('d_loss_real', 'D_loss_real'), ('d_loss_fake', 'D_loss_fake'),
                       ('g_loss', 'G_loss')):
    want = d[f'it{it}/micro_{theirs}'].mean()
    err = abs(float(metrics[ours]) - want) / abs(want)
    print(f'{variant} it{it} {ours}: {float(metrics[ours]):.12g} vs {want:.12g}, rel {err:.1e}')
    assert err <= RTOL, ours


@pytest.mark.parametrize('it', ITERATIONS)
@pytest.mark.parametrize('net', ['G', 'D', 'G_ema'])
def test_networks(variant, it, net):
  """Weights (in units of lr), SN u and sigma and BN stored statistics (RTOL)."""
  r = run(variant)
  lr = r['config'].lr_d if net == 'D' else r['config'].lr_g

  def tol(key, want):
    scale = np.abs(want).max()
    if key.startswith('params/'):
      return LR_UNITS * lr + RTOL * scale
    return RTOL * max(scale, 1.0)

  worst, where = _check(f'{variant} it{it} {net}', r['ours'][it - 1][net],
                        r['refs'][it - 1][net], tol)
  print(f'{variant} it{it} {net}: worst |diff| / tol {worst:.2e} at {where}')


@pytest.mark.parametrize('it', ITERATIONS)
@pytest.mark.parametrize('moment', ['exp_avg', 'exp_avg_sq'])
@pytest.mark.parametrize('net', ['G', 'D'])
def test_adam_moments(variant, it, moment, net):
  """Adam's moments at the scale of the gradients (module docstring)."""
  r = run(variant)
  ours, ref = r['ours'][it - 1], r['refs'][it - 1]
  assert int(ours[f'{net}_adam_step']) == int(r['d'][f'it{it}/{net}_adam_step']), 'Adam steps'
  top = max(np.abs(v).max() for v in _flat(ref[f'{net}_{moment}']).values())
  tol = lambda key, want: RTOL * np.abs(want).max() + NOISE_FLOOR * top
  worst, where = _check(f'{variant} it{it} {net} {moment}', ours[f'{net}_{moment}'],
                        ref[f'{net}_{moment}'], tol)
  print(f'{variant} it{it} {net} {moment}: worst |diff| / tol {worst:.2e} at {where}')


def test_the_fixture_has_teeth(variant):
  """What the comparison relies on moved: every weight by Adam steps, SN u, BN statistics
  and the EMA (a copy of G after iteration 1, a decay at 2)."""
  r = run(variant)
  init = _flat(r['init']['G'])
  it1, it2 = r['refs']
  g1, g2 = _flat(it1['G']), _flat(it2['G'])
  for k in g1:
    moved = np.abs(g1[k] - init[k]).max()
    if k.startswith('params/'):
      # Conv biases whose output reaches only a BN (and no attention) have a true
      # gradient of 0: their rounding-noise gradients (~1e-16) move them by ~1e-9 lr.
      assert moved > 0.5 * r['config'].lr_g or (k.endswith('bias') and 'conv' in k), k
    elif not k.endswith('sigma'):  # an orthogonal-init weight's sigma is 1 and stays ~1.
      assert moved > 1e-6, f'G {k} did not move'
  d0, d1 = _flat(r['init']['D']), _flat(it1['D'])
  assert all(np.abs(d1[k] - d0[k]).max() > 1e-6 for k in d1 if not k.endswith('sigma')), \
      'a D entry did not move'
  e1, e2 = _flat(it1['G_ema']), _flat(it2['G_ema'])
  decay = r['cfg']['ema_decay']
  for k in e1:
    np.testing.assert_array_equal(e1[k], g1[k])
    np.testing.assert_allclose(e2[k], decay * e1[k] + (1 - decay) * g2[k], rtol=1e-12,
                               atol=1e-15)
