"""Sampling: the truncation trick, interpolations, load_generator on a training
workdir, and python -m biggan_jax.sample (sheets, arrays, order, errors)."""

import math
import os
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest
from PIL import Image

from biggan_jax import config as config_lib
import biggan_jax
from biggan_jax import sample, sampling
from biggan_jax.checkpoints import run_checkpoints
from biggan_jax.sampling import plans
from biggan_jax.training import loop
from biggan_jax.utils import images as images_lib
from cli_checks import one_error_line
import damage
from paths import REPO

R = 16  # the workdir's resolution
T = R * images_lib.upscale_factor(R) + images_lib.PADDING  # a sheet's tile pitch


def sheet_size(rows: int, cols: int) -> tuple[int, int]:
  """PIL's (width, height) of a sheet of rows x cols tiles."""
  return cols * T + images_lib.PADDING, rows * T + images_lib.PADDING


def tiny_config(**overrides):
  return config_lib.from_file(REPO / 'configs' / 'tiny.py', **overrides)


@pytest.fixture(scope='module')
def workdir(tmp_path_factory):
  """A real one-step training run; 16x16 without attention to keep compiles short."""
  config = tiny_config(total_steps=1, checkpoint_every=1, sample_every=0, log_every=1,
                       num_d_steps=1, num_standing_stats=1)
  config.model.resolution = R
  config.model.g_attn = config.model.d_attn = ''
  workdir = tmp_path_factory.mktemp('run')
  loop.train_and_evaluate(config, str(workdir))
  return workdir


@pytest.fixture(scope='module')
def sampler(workdir):
  return biggan_jax.load_generator(workdir)


# ---------------------------------------------------------------- truncation

def truncnorm_std(t):
  """Standard deviation of N(0, 1) truncated to [-t, t]."""
  pdf = math.exp(-t * t / 2) / math.sqrt(2 * math.pi)
  mass = math.erf(t / math.sqrt(2))
  return math.sqrt(1 - 2 * t * pdf / mass)


@pytest.mark.parametrize('t', [0.25, 1.0, 2.0])
def test_truncated_z_is_the_truncated_normal(t):
  z = np.asarray(sampling.truncated_z(jax.random.PRNGKey(0), 4000, 16, t))
  assert z.shape == (4000, 16) and z.dtype == np.float32
  assert np.abs(z).max() <= t
  assert abs(z.mean()) < 0.01 * t + 0.005
  assert abs(z.std() / truncnorm_std(t) - 1) < 0.02
  # Resampling values outside ±t keeps N(0, 1)'s shape inside: the fraction
  # within t/2 is P(|x| < t/2) / P(|x| < t).
  inner = math.erf(t / 2 / math.sqrt(2)) / math.erf(t / math.sqrt(2))
  assert abs((np.abs(z) < t / 2).mean() - inner) < 0.01


def test_no_truncation_is_the_standard_normal():
  z = np.asarray(sampling.truncated_z(jax.random.PRNGKey(0), 4000, 16, None))
  assert abs(z.std() - 1) < 0.02 and np.abs(z).max() > 3


@pytest.mark.parametrize('t', [0, -0.5, float('nan'), float('inf'), True, '0.5'])
def test_bad_truncation_is_a_value_error(t):
  with pytest.raises(ValueError, match='truncation'):
    sampling.truncated_z(jax.random.PRNGKey(0), 2, 4, t)


# ---------------------------------------------------------- load_generator

def test_load_generator_on_a_training_workdir(workdir, sampler):
  meta, variables = run_checkpoints.restore_ema_generator(str(workdir / 'checkpoints'))
  assert meta['kind'] == 'biggan_jax.train' and meta['step'] == 1
  assert (sampler.resolution, sampler.dim_z, sampler.num_classes) == (R, 16, 5)
  assert sampler.truncation_convention == 'paper' and sampler.class_names is None
  # The EMA G with its standing statistics, as saved.
  for a, b in zip(jax.tree.leaves(sampler.variables), jax.tree.leaves(variables)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  # A step folder and the checkpoints folder open the same generator.
  for path in (workdir / 'checkpoints', workdir / 'checkpoints' / '1'):
    assert biggan_jax.load_generator(path).meta['step'] == 1

  y = np.array([0, 3, 4, 1])
  images = sampler.sample(y, truncation=0.5, seed=3, batch_size=4)
  assert images.shape == (4, R, R, 3) and images.dtype == np.float32
  assert np.abs(images).max() <= 1 and images.std() > 0
  z = sampling.truncated_z(jax.random.PRNGKey(3), 4, 16, 0.5)
  direct = sampler.module.apply(variables, z, y, train=False)
  np.testing.assert_allclose(images, direct, atol=1e-6)
  np.testing.assert_array_equal(sampler.sample(y, z=z, batch_size=4), images)
  # Batches of 3 (the last one padded) give the same images.
  np.testing.assert_allclose(sampler.sample(y, z=z, batch_size=3), images, atol=1e-5)
  assert images_lib.to_uint8(images).dtype == np.uint8
  assert images_lib.to_pil(images)[1].size == (R, R)


def test_interpolation_endpoints_are_direct_samples(sampler):
  z = np.asarray(sampling.truncated_z(jax.random.PRNGKey(1), 2, 16, None))
  along_z = sampler.interpolate_z(z[0], z[1], 2, 4, batch_size=4)
  assert along_z.shape == (4, R, R, 3)
  ends = sampler.sample([2], z=np.stack([z[0], z[1], z[0], z[1]]), batch_size=4)
  np.testing.assert_allclose(along_z[0], ends[0], atol=1e-5)
  np.testing.assert_allclose(along_z[-1], ends[1], atol=1e-5)
  assert np.abs(along_z[1] - ends[0]).max() > 1e-3  # the middle differs

  along_y = sampler.interpolate_classes(z, [0, 1], [4, 3], 2, batch_size=4)
  assert along_y.shape == (2, 2, R, R, 3)
  starts = sampler.sample([0, 1, 4, 3], z=np.concatenate([z, z]), batch_size=4)
  np.testing.assert_allclose(along_y[:, 0], starts[:2], atol=1e-5)
  np.testing.assert_allclose(along_y[:, -1], starts[2:], atol=1e-5)


def test_class_names_and_unknown_classes(sampler):
  named = sampling.Sampler(sampler.module, sampler.variables,
                           {**sampler.meta, 'class_names': list('abcde')},
                           sampler.model_config)
  np.testing.assert_array_equal(named.class_ids(['e', 'B', 0, '3']), [4, 1, 0, 3])
  with pytest.raises(ValueError, match="unknown class 'zebra': it is not one of"):
    named.class_ids(['a', 'zebra'])
  with pytest.raises(ValueError, match="unknown class 'goldfish': this checkpoint has no "):
    sampler.class_ids('goldfish')
  for bad in (5, -1, [1, 7]):
    with pytest.raises(ValueError, match='unknown class .*0..4'):
      sampler.sample(bad)
  with pytest.raises(ValueError, match='z has shape'):
    sampler.sample([0], z=np.zeros((2, 20)))
  with pytest.raises(ValueError, match='truncation'):
    sampler.sample([0], truncation=0)


def test_tfhub_convention_needs_its_tables(sampler):
  """A 'tfhub' checkpoint carries per-truncation BN tables; the rest is in
  tests/test_convert_huggingface.py."""
  with pytest.raises(KeyError, match='batch_stats_by_truncation'):
    sampling.Sampler(sampler.module, sampler.variables,
                     {**sampler.meta, 'truncation_convention': 'tfhub'}, sampler.model_config)


# ---------------------------------------------------------------------- CLI

def run_cli(*flags):
  return sample.main(['sample', *flags])


def test_cli_sheet_one_class_per_row(workdir, tmp_path):
  out = tmp_path / 'sheet.png'
  assert run_cli(f'--checkpoint={workdir}', f'--output={out}', '--labels=0,3,4',
                 '--num=2', '--truncation=0.5') == 0
  assert Image.open(out).size == sheet_size(3, 2)


def test_cli_arrays_keep_the_order_of_z_and_labels(workdir, sampler, tmp_path):
  z = np.asarray(sampling.truncated_z(jax.random.PRNGKey(7), 5, 16, None))
  y = np.array([4, 0, 3, 3, 1])
  np.save(tmp_path / 'z.npy', z)
  np.save(tmp_path / 'y.npy', y)
  out = tmp_path / 'x.npy'
  assert run_cli(f'--checkpoint={workdir}', f'--output={out}', f'--z_file={tmp_path}/z.npy',
                 f'--labels_file={tmp_path}/y.npy', '--batch_size=5') == 0
  images = np.load(out)
  assert images.shape == (5, R, R, 3) and images.dtype == np.float32
  np.testing.assert_allclose(images, sampler.sample(y, z=z, batch_size=5), atol=1e-6)


def test_cli_interpolations(workdir, sampler, tmp_path):
  out = tmp_path / 'classes.npy'
  assert run_cli(f'--checkpoint={workdir}', f'--output={out}', '--interpolate=class',
                 '--labels=0,4,1,2', '--steps=2', '--seed=5') == 0
  images = np.load(out)
  assert images.shape == (2, 2, R, R, 3)
  z = sampling.truncated_z(jax.random.PRNGKey(5), 2, 16, None)
  np.testing.assert_allclose(images[:, 0], sampler.sample([0, 1], z=z), atol=1e-5)
  sheet = tmp_path / 'z.png'
  assert run_cli(f'--checkpoint={workdir}', f'--output={sheet}', '--interpolate=z',
                 '--labels=3', '--num=2', '--steps=2') == 0
  assert Image.open(sheet).size == sheet_size(2, 2)  # a row per interpolation


def test_cli_never_overwrites_without_the_flag(workdir, tmp_path, capsys):
  out = tmp_path / 'x.npy'
  out.write_bytes(b'precious')
  assert run_cli(f'--checkpoint={workdir}', f'--output={out}', '--labels=1') == 2
  one_error_line(capsys, 'exists', '--overwrite')
  assert out.read_bytes() == b'precious'
  assert run_cli(f'--checkpoint={workdir}', f'--output={out}', '--labels=1',
                 '--overwrite') == 0
  assert np.load(out).shape == (1, R, R, 3)
  assert [p.name for p in tmp_path.iterdir()] == ['x.npy']  # no temporaries left


@pytest.mark.parametrize('case, flags, needles', [
    ('unknown class', ['--labels=1,9'], ["unknown class '9'", '0..4']),
    ('class name', ['--labels=goldfish'], ["unknown class 'goldfish'"]),
    ('zero truncation', ['--truncation=0'], ['truncation=0.0', '> 0']),
    ('negative truncation', ['--truncation=-1'], ['truncation=-1.0']),
    ('bad suffix', ['--output={tmp}/x.jpg'], ['.png', '.npy']),
    ('missing checkpoint', ['--checkpoint={tmp}/nowhere'], ['no such checkpoint']),
    ('no checkpoints', ['--checkpoint={tmp}/run'], ['training workdir without checkpoints']),
    ('another model z', ['--z_file={tmp}/z.npy', '--labels=1'], ['dim_z=16', 'another model']),
    ('z without labels', ['--z_file={tmp}/z16.npy'], ['--z_file needs --labels_file']),
    ('odd class pairs', ['--interpolate=class', '--labels=1,2,3'], ['pairs of classes']),
    ('truncated weights', ['--checkpoint={tmp}/broken'],
     ['none of its 1 checkpoints has an EMA generator that restores', 'complete?']),
])
def test_cli_bad_input_is_one_line(case, flags, needles, workdir, tmp_path, capsys):
  del case
  np.save(tmp_path / 'z.npy', np.zeros((3, 20), np.float32))  # a dim_z=20 model's z
  np.save(tmp_path / 'z16.npy', np.zeros((3, 16), np.float32))
  (tmp_path / 'run').mkdir()
  (tmp_path / 'run' / 'config.json').write_text('{}')
  if any('broken' in f for f in flags):
    broken = tmp_path / 'broken'
    shutil.copytree(workdir / 'checkpoints', broken / 'checkpoints')
    data = max((p for p in (broken / 'checkpoints' / '1' / 'ema_generator').rglob('*')
                if p.is_file()), key=lambda p: p.stat().st_size)
    data.write_bytes(data.read_bytes()[:100])
  args = {'--checkpoint': str(workdir), '--output': str(tmp_path / 'out.npy')}
  for flag in flags:
    key, value = flag.split('=', 1)
    args[key] = value.format(tmp=tmp_path)
  assert run_cli(*(f'{k}={v}' for k, v in args.items())) == 2
  one_error_line(capsys, *needles)
  assert not (tmp_path / 'out.npy').exists()


def test_cli_runs_without_tensorflow(workdir, tmp_path):
  """python -m biggan_jax.sample with TensorFlow, clu and TFDS unimportable, as
  on a bare GPU machine: sampling needs only JAX, Flax and Orbax."""
  out = tmp_path / 'x.npy'
  script = (  # hides the packages from the import system, as if not installed.
      'import importlib.machinery as machinery, runpy, sys\n'
      'class Hidden(machinery.PathFinder):\n'
      '  @classmethod\n'
      '  def find_spec(cls, name, path=None, target=None):\n'
      "    if name.split('.')[0] in ('tensorflow', 'clu', 'tensorflow_datasets'):\n"
      '      return None\n'
      '    return machinery.PathFinder.find_spec(name, path, target)\n'
      'sys.meta_path = [Hidden if f is machinery.PathFinder else f for f in sys.meta_path]\n'
      f"sys.argv = ['sample', '--checkpoint={workdir}', '--output={out}', '--labels=2,1']\n"
      "runpy.run_module('biggan_jax.sample', run_name='__main__')\n")
  env = {**os.environ, 'JAX_PLATFORMS': 'cpu'}
  env.pop('XLA_FLAGS', None)
  proc = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True,
                        timeout=180, env=env, cwd=REPO, check=False)
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert np.load(out).shape == (2, R, R, 3)


# --------------------------------------------------------------- --seeds

def test_cli_seeds_one_image_per_seed_whatever_the_others(workdir, sampler, tmp_path):
  many, alone = tmp_path / 'many.npy', tmp_path / 'alone.npy'
  assert run_cli(f'--checkpoint={workdir}', f'--output={many}', '--seeds=0-2,5',
                 '--labels=0,3', '--truncation=0.7') == 0
  assert run_cli(f'--checkpoint={workdir}', f'--output={alone}', '--seeds=5', '--labels=3',
                 '--truncation=0.7') == 0
  images = np.load(many)
  assert images.shape == (8, R, R, 3)  # a row per label, a column per seed
  # A batch of 8 and one of 1 may differ in float32's last bits (XLA:CPU rounds
  # them apart on some hosts, 3e-7 on an AMD EPYC); another seed is far off.
  close = dict(rtol=1e-5, atol=1e-6)
  assert not np.allclose(images[7], images[6], **close)
  np.testing.assert_allclose(images[7], np.load(alone)[0], **close)
  np.testing.assert_allclose(images[7], sampler.sample([3], seed=5, truncation=0.7)[0], **close)
  np.testing.assert_allclose(images[1], sampler.sample([0], seed=1, truncation=0.7)[0], **close)
  assert plans.parse_seeds('0-3,7, 9') == [0, 1, 2, 3, 7, 9]


def test_cli_outdir_one_png_per_image_named_by_class_and_seed(workdir, sampler, tmp_path,
                                                               capsys):
  out = tmp_path / 'pngs'
  assert run_cli(f'--checkpoint={workdir}', f'--outdir={out}', '--seeds=1-2',
                 '--labels=4,0') == 0
  names = sorted(p.name for p in out.iterdir())
  assert names == ['0-seed0001.png', '0-seed0002.png', '4-seed0001.png', '4-seed0002.png']
  np.testing.assert_array_equal(np.asarray(Image.open(out / '4-seed0002.png')),
                                images_lib.to_uint8(sampler.sample([4], seed=2))[0])
  before = (out / '0-seed0001.png').read_bytes()
  assert run_cli(f'--checkpoint={workdir}', f'--outdir={out}', '--seeds=0-1',
                 '--labels=0') == 2
  one_error_line(capsys, '0-seed0001.png exists', '--overwrite')
  assert not (out / '0-seed0000.png').exists()  # checked before anything is written
  assert (out / '0-seed0001.png').read_bytes() == before


@pytest.mark.parametrize('args, message', [
    (['--seeds=3-1', '--output=x.npy'], "'3-1' is not a seed or a range"),
    (['--seeds=a', '--output=x.npy'], "'a' is not a seed"),
    (['--outdir=d', '--labels=1'], '--outdir writes one PNG per seed'),
    (['--seeds=1', '--num=2', '--output=x.png'], '--num does not go with --seeds'),
    (['--seeds=1'], 'give --output'),
    (['--seeds=1', '--output=x.png', '--outdir=d'], 'give --output'),
])
def test_cli_seed_errors(workdir, tmp_path, capsys, monkeypatch, args, message):
  monkeypatch.chdir(tmp_path)
  assert run_cli(f'--checkpoint={workdir}', *args) == 2
  one_error_line(capsys, message)
  assert list(tmp_path.iterdir()) == []


def test_a_corrupt_latest_checkpoint_is_skipped_with_a_warning(workdir, tmp_path, capsys):
  """load_generator and sample verify the EMA G's checksums and walk back past a bad one."""
  copy = tmp_path / 'run'
  shutil.copytree(workdir, copy)
  shutil.copytree(copy / 'checkpoints' / '1', copy / 'checkpoints' / '2')
  damage.change_a_value(copy / 'checkpoints' / '2' / 'ema_generator')
  loaded = biggan_jax.load_generator(copy)
  [skipped] = loaded.meta['skipped']
  assert skipped.startswith('checkpoint 2 skipped: checkpoint 2: its ema_generator is not what '
                            'was saved (checksum mismatch in 1 of ')
  assert run_cli(f'--checkpoint={copy}', f'--output={tmp_path}/s.png', '--labels=0',
                 '--num=2') == 0
  err = capsys.readouterr().err
  assert err.startswith('warning: checkpoint 2 skipped: ') and err.count('\n') == 1
  with pytest.raises(biggan_jax.checkpoints.CheckpointError, match='checksum mismatch'):
    biggan_jax.load_generator(copy / 'checkpoints' / '2')
