"""Fine-tuning with main --init_from: G, EMA G and D from a training workdir or a
converted directory, a fresh optimiser and step, the architecture check, and
resumption winning over --init_from."""

import logging
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from biggan_jax import config as config_lib
from biggan_jax import models
from biggan_jax.checkpoints import converted as checkpoint_dir
from biggan_jax.checkpoints import init_from
from biggan_jax.checkpoints import run_checkpoints
from biggan_jax.training import loop, sharding
from biggan_jax.training import state as train_state
from cli_checks import one_error_line, run_main
from paths import REPO

R = 16  # 16x16 without attention: the tiny model with the shortest compiles.
SMALL = [f'--config.model.resolution={R}', '--config.model.g_attn=', '--config.model.d_attn=',
         '--config.sample_every=0', '--config.num_d_steps=1', '--config.num_standing_stats=1']


def tiny_config(**overrides):
  config = config_lib.from_file(REPO / 'configs' / 'tiny.py', sample_every=0, num_d_steps=1,
                                num_standing_stats=1, **overrides)
  config.model.resolution = R
  config.model.g_attn = config.model.d_attn = ''
  return config


def fresh_state(config):
  G, D = models.create_generator(config.model), models.create_discriminator(config.model)
  return jax.jit(lambda k: train_state.create(config, G, D, k))(jax.random.PRNGKey(config.seed))


def assert_trees_equal(a, b):
  assert jax.tree.structure(a) == jax.tree.structure(b)
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.fixture(scope='module')
def source_run(tmp_path_factory):
  """A one-step training run and its saved TrainState."""
  config = tiny_config(total_steps=1, checkpoint_every=1, seed=5)
  workdir = tmp_path_factory.mktemp('source_run')
  loop.train_and_evaluate(config, str(workdir))
  mngr = run_checkpoints.manager(workdir / 'checkpoints', read_only=True)
  state, _ = run_checkpoints.restore_state(mngr, 1, fresh_state(config))
  return workdir, jax.device_get(state)


def perturbed_variables(module, key, *inputs):
  """Initial variables plus noise, so that no leaf equals a fresh init's (one jitted
  program: op by op, every primitive would compile on its own)."""
  @jax.jit
  def perturbed(key, *inputs):
    variables = module.init({'params': key}, *inputs, train=False)
    leaves, tree = jax.tree.flatten(variables)
    keys = jax.random.split(jax.random.fold_in(key, 1), len(leaves))
    return jax.tree.unflatten(tree, [v + 0.1 * jax.random.normal(k, v.shape)
                                     for v, k in zip(leaves, keys)])
  return jax.tree.map(np.asarray, perturbed(key, *inputs))


@pytest.fixture(scope='module')
def converted(tmp_path_factory):
  """Converted directories made with checkpoint_dir.save: G and D, and G only."""
  m = tiny_config().model
  z, y = np.zeros((1, m.dim_z), np.float32), np.zeros((1,), np.int32)
  x = np.zeros((1, R, R, 3), np.float32)
  g_vars = perturbed_variables(models.create_generator(m), jax.random.PRNGKey(11), z, y)
  d_vars = perturbed_variables(models.create_discriminator(m), jax.random.PRNGKey(12), x, y)
  root = tmp_path_factory.mktemp('converted')
  meta = {'source': 'test', 'model': m.to_dict(), 'truncation_convention': 'paper'}
  checkpoint_dir.save(root / 'g_and_d', meta, g_vars, d_vars)
  checkpoint_dir.save(root / 'g_only', meta, g_vars)
  return root, g_vars, d_vars


def split(variables):
  variables = dict(variables)
  return variables.pop('params'), variables


def test_init_from_a_training_workdir(source_run, tmp_path):
  source, saved = source_run
  config = tiny_config(total_steps=0)
  state = loop.train_and_evaluate(config, str(tmp_path), init_from=str(source))
  for field in ('g_params', 'g_state', 'ema_params', 'ema_state', 'd_params', 'd_state'):
    assert_trees_equal(getattr(state, field), getattr(saved, field))
  assert not np.array_equal(np.asarray(jax.tree.leaves(state.ema_params)[0]),
                            np.asarray(jax.tree.leaves(state.g_params)[0]))  # EMA G its own
  # A new run's optimiser states, step and RNG.
  fresh = fresh_state(config)
  for field in ('g_opt_state', 'd_opt_state', 'step', 'rng'):
    assert_trees_equal(getattr(state, field), getattr(fresh, field))
  assert int(saved.step) == 1 and int(state.step) == 0


def test_init_from_a_converted_directory(converted, tmp_path):
  root, g_vars, d_vars = converted
  config = tiny_config(total_steps=0)
  state = loop.train_and_evaluate(config, str(tmp_path), init_from=str(root / 'g_and_d'))
  g_params, g_state = split(g_vars)
  d_params, d_state = split(d_vars)
  assert set(g_state) == {'batch_stats', 'spectral'}
  assert_trees_equal(state.g_params, g_params)
  assert_trees_equal(state.ema_params, g_params)
  assert_trees_equal(state.g_state, g_state)
  assert_trees_equal(state.ema_state, g_state)
  assert_trees_equal(state.d_params, d_params)
  assert_trees_equal(state.d_state, d_state)
  fresh = fresh_state(config)
  assert_trees_equal(state.g_opt_state, fresh.g_opt_state)
  assert int(state.step) == 0
  # Laid out on the run's mesh, like the state it replaces.
  leaf = jax.tree.leaves(state.g_params)[0]
  assert leaf.sharding.is_equivalent_to(sharding.replicated(sharding.make_mesh()), leaf.ndim)


def test_converted_without_discriminator_keeps_a_fresh_d(converted, tmp_path, caplog):
  root, g_vars, _ = converted
  config = tiny_config(total_steps=0)
  with caplog.at_level(logging.WARNING):
    state = loop.train_and_evaluate(config, str(tmp_path), init_from=str(root / 'g_only'))
  assert 'D keeps its fresh initialisation' in caplog.text
  assert_trees_equal(state.g_params, split(g_vars)[0])
  fresh = fresh_state(config)
  assert_trees_equal(state.d_params, fresh.d_params)
  assert_trees_equal(state.d_state, fresh.d_state)


def test_existing_checkpoint_wins(source_run, converted, tmp_path, caplog):
  """A preempted fine-tune restarted with the same flags resumes, not restarts."""
  source, saved = source_run
  workdir = tmp_path / 'run'
  shutil.copytree(source, workdir)
  config = tiny_config(total_steps=1, checkpoint_every=1, seed=5)
  with caplog.at_level(logging.WARNING):
    state = loop.train_and_evaluate(config, str(workdir),
                                     init_from=str(converted[0] / 'g_and_d'))
  assert '--init_from=' in caplog.text and 'ignored' in caplog.text
  assert_trees_equal(jax.device_get(state), saved)


def test_fine_tune_from_the_command_line(converted, tmp_path, caplog, monkeypatch):
  """main --init_from: one real step from a converted G and D, saved at step 1."""
  root, _, d_vars = converted
  monkeypatch.chdir(REPO)
  assert run_main('--config=configs/tiny.py', f'--workdir={tmp_path}',
                  f'--init_from={root / "g_and_d"}', *SMALL, '--config.total_steps=1',
                  '--config.checkpoint_every=1') == 0
  assert 'G, EMA G and D from the converted checkpoint' in caplog.text
  mngr = run_checkpoints.manager(tmp_path / 'checkpoints', read_only=True)
  assert mngr.all_steps() == [1]
  state, _ = run_checkpoints.restore_state(mngr, 1, fresh_state(tiny_config()))
  assert int(state.step) == 1
  # One step of Adam with lr 2e-4 moved D from the converted weights, a little.
  d_params = split(d_vars)[0]
  change = max(float(np.abs(np.asarray(a) - np.asarray(b)).max())
               for a, b in zip(jax.tree.leaves(state.d_params), jax.tree.leaves(d_params)))
  assert 0 < change < 1e-2


@pytest.mark.parametrize('case,args,needles', [
    ('missing', ['--init_from={tmp}/nope', *SMALL], ['--init_from=', 'nope: no such directory']),
    ('not_a_checkpoint', ['--init_from={tmp}', *SMALL],
     ['neither a converted checkpoint directory', 'nor a training workdir']),
    ('other_resolution', ['--init_from={converted}'],
     ["model.resolution (16 there, 32 here)", "model.g_attn ('' there, '16' here)",
      "add --config.model.resolution=16 --config.model.g_attn='' --config.model.d_attn=''"]),
    ('other_width', ['--init_from={converted}', *SMALL, '--config.model.ch=8'],
     ['model.ch (4 there, 8 here)', 'model.d_ch (4 there, 8 here)',
      '--config.model.ch=4 --config.model.d_ch=4']),
], ids=lambda v: v if isinstance(v, str) else None)
def test_bad_init_from_is_one_line(case, args, needles, converted, tmp_path, capsys,
                                   monkeypatch):
  del case
  args = [a.format(tmp=tmp_path, converted=converted[0] / 'g_and_d') for a in args]
  monkeypatch.chdir(REPO)
  assert run_main('--config=configs/tiny.py', f'--workdir={tmp_path / "run"}', *args) == 2
  one_error_line(capsys, *needles)
  assert not (tmp_path / 'run' / 'checkpoints').exists()  # stopped before anything was built


def test_mismatch_suggests_the_config_file_that_fits(tmp_path):
  """DIR with the digits demo's architecture: the error points at configs/digits.py."""
  digits = config_lib.from_file(REPO / 'configs' / 'digits.py').model.to_dict()
  digits['sn_eps'] = digits['bn_eps'] = 1e-3  # no shape: not compared
  source = init_from.Source(tmp_path, 'converted', digits, has_discriminator=True)
  with pytest.raises(init_from.InitFromError, match='use --config=configs/digits.py or add'):
    init_from.check_architecture(tiny_config(), source)
  init_from.check_architecture(config_lib.from_file(REPO / 'configs' / 'digits.py'), source)
  # Without a D in DIR, D's width is the run's own choice.
  source.has_discriminator = False
  config = config_lib.from_file(REPO / 'configs' / 'digits.py')
  config.model.d_ch = 64
  init_from.check_architecture(config, source)
  config.model.ch = 8
  with pytest.raises(init_from.InitFromError, match=r'in model.ch \(16 there, 8 here\);'):
    init_from.check_architecture(config, source)


def test_init_from_a_huggingface_conversion(tmp_path):
  """A converted pytorch-pretrained-BigGAN G (no D): its τ = 1 BN statistics."""
  pytest.importorskip('pytorch_pretrained_biggan')
  pytest.importorskip('biggan_jax.convert.huggingface')
  hf_fixture = pytest.importorskip('hf_fixture')
  import biggan_jax
  from biggan_jax.convert import convert
  source = tmp_path / 'converted'
  meta = convert('huggingface', hf_fixture.write_tiny_hf(str(tmp_path / 'hf')), str(source))
  config = tiny_config(total_steps=0)
  with pytest.raises(init_from.InitFromError, match='--config.model.output_conv_channels=4'):
    init_from.check(config, source, tmp_path / 'run')
  for key, value in meta['model'].items():  # the architecture the error asks for
    config.model[key] = value
  assert init_from.check(config, source, tmp_path / 'run').num_bn_stats == 51
  # init_from.initialize alone, on a stand-in state of zeros (the loop's call of it
  # is tested above): creating a real 128x128 state takes minutes on a CPU.
  g_params, g_state = split(biggan_jax.load_generator(source).variables)
  assert set(g_state) == {'batch_stats', 'spectral'}  # the per-τ tables are not loaded
  zeros = lambda tree: jax.tree.map(jnp.zeros_like, tree)
  fresh = train_state.TrainState(
      step=jnp.zeros((), jnp.int32), rng=jax.random.PRNGKey(0), g_params=zeros(g_params),
      g_state=zeros(g_state), g_opt_state=(), d_params={'d': jnp.ones(3)}, d_state={},
      d_opt_state=(), ema_params=zeros(g_params), ema_state=zeros(g_state), sv={})
  state = init_from.initialize(fresh, config, str(source))
  for field in ('g_params', 'ema_params'):
    assert_trees_equal(getattr(state, field), g_params)
  for field in ('g_state', 'ema_state'):
    assert_trees_equal(getattr(state, field), g_state)
  assert_trees_equal(state.d_params, fresh.d_params)  # no D in DIR


def test_fine_tune_a_g_shared_false_conversion(tmp_path):
  """BigGAN-PyTorch's G_shared=False model (launch_cifar_ema.sh's), converted from the
  unshared32 fixture: --init_from loads its per-BN class tables, and one training
  step moves them (and nothing breaks for a G without a shared embedding)."""
  from biggan_jax.convert import biggan_pytorch as bp
  from paths import TESTDATA
  ref = np.load(TESTDATA / 'biggan_pytorch_unshared32_f64.npz')
  m = bp.model_config_from_pytorch(eval(str(ref['config']), {}))
  G, D = models.create_generator(m), models.create_discriminator(m)
  z, y = jnp.zeros((1, m.dim_z)), jnp.zeros((1,), jnp.int32)
  x = jnp.zeros((1, m.resolution, m.resolution, 3))
  sd = lambda p: {k[len(p) + 1:]: ref[k] for k in ref.files if k.startswith(p + '/')}
  g_vars = bp.to_variables(sd('G_after_train_fwd'), bp.expected_variables(G, z, y),
                           generator=True, model=m)
  d_vars = bp.to_variables(sd('D_after_train_fwd'), bp.expected_variables(D, x, y),
                           generator=False, model=m)
  source = tmp_path / 'converted'
  checkpoint_dir.save(source, {'source': 'biggan-pytorch', 'model': m.to_dict(),
                               'truncation_convention': 'paper'}, g_vars, d_vars)
  config = tiny_config(total_steps=1)
  config.model.update(m.to_dict())
  with pytest.raises(init_from.InitFromError, match=r'model.shared_embedding \(False there'):
    init_from.check(tiny_config(total_steps=1), source, tmp_path / 'other')
  state = loop.train_and_evaluate(config, str(tmp_path / 'run'), init_from=str(source))
  assert int(state.step) == 1
  table = lambda params: np.asarray(params['block1']['bn2']['bias']['embedding'])
  before = table(g_vars['params'])
  change = np.abs(table(jax.device_get(state.g_params)) - before).max()
  assert before.shape == (10, 32) and 0 < change < 1e-2  # one Adam step of lr 5e-5
