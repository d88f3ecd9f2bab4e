"""--source=huggingface: pytorch-pretrained-BigGAN's BigGAN-deep, numerically.

The reference is the package itself (pytorch_pretrained_biggan, in the test
extra) running a tiny random model in eval mode (tests/hf_fixture.py).
"""

import json
import math
import pathlib
import shutil

import jax
import numpy as np
import pytest

import biggan_jax
from biggan_jax import checkpoints, models, sampling
from biggan_jax import convert, sample
from biggan_jax.convert import __main__ as convert_main
from biggan_jax.convert import huggingface

pytest.importorskip('torch')
pytest.importorskip('pytorch_pretrained_biggan')
import hf_fixture
from cli_checks import one_error_line
from paths import TESTDATA

DATA = TESTDATA


@pytest.fixture(scope='module')
def hf_folder(tmp_path_factory):
  return pathlib.Path(hf_fixture.write_tiny_hf(tmp_path_factory.mktemp('hf') / 'tiny'))


@pytest.fixture(scope='module')
def converted(hf_folder, tmp_path_factory):
  out = tmp_path_factory.mktemp('converted') / 'biggan_deep'
  convert.convert('huggingface', str(hf_folder), str(out))
  return out


@pytest.fixture(scope='module')
def sampler(converted):
  return biggan_jax.load_generator(converted)


@pytest.fixture(scope='module')
def reference():
  return hf_fixture.tiny_model()[0]


def rel_err(a, b):
  return float(np.abs(a - b).max() / np.abs(b).max())


# 0.14 and 0.58 exercise the package's modf quirk (0.14 / 0.02 =
# 7.000000000000001); 0.123 a real interpolation; 1.0 the last table row.
@pytest.mark.parametrize('truncation', [0.14, 0.4, 0.58, 0.123, 1.0])
def test_outputs_match_the_package(sampler, reference, truncation):
  rng = np.random.default_rng(int(truncation * 1000))
  y = rng.integers(0, 10, 5)
  z = (truncation * np.clip(rng.standard_normal((5, 16)), -2, 2)).astype(np.float32)
  want = hf_fixture.reference_images(reference, z, y, truncation)
  got = sampler.sample(y, z=z, truncation=truncation)
  assert got.shape == want.shape == (5, 128, 128, 3)
  assert np.abs(want).std() > 0.05  # a real image signal, not a constant
  assert rel_err(got, want) <= 1e-4


def test_bn_statistics_follow_truncation(sampler, reference):
  """The τ-indexed statistics matter: the same z at another τ's statistics differs."""
  z = (0.5 * np.clip(np.random.default_rng(1).standard_normal((2, 16)), -2, 2)).astype(
      np.float32)
  a = sampler.sample([3, 4], z=z, truncation=0.5)
  b = sampler.sample([3, 4], z=z, truncation=0.9)
  assert rel_err(a, b) > 1e-2
  assert rel_err(b, hf_fixture.reference_images(reference, z, np.array([3, 4]), 0.9)) <= 1e-4


def test_bn_stats_at_reproduces_the_package_selection():
  table = {'m': np.arange(51 * 2, dtype=np.float32).reshape(51, 2)}
  np.testing.assert_array_equal(sampling.bn_stats_at(table, 1.0)['m'], table['m'][50])
  np.testing.assert_array_equal(sampling.bn_stats_at(table, 0.4)['m'], table['m'][20])
  coef, start = math.modf(0.14 / (1 / 50))
  assert start == 7 and 0 < coef < 1e-12  # float rounding: the row of τ = 0.16
  np.testing.assert_allclose(sampling.bn_stats_at(table, 0.14)['m'], table['m'][8], atol=1e-5)
  np.testing.assert_allclose(sampling.bn_stats_at(table, 0.58)['m'], table['m'][28], atol=1e-5)
  coef, start = math.modf(0.123 / 0.02)
  np.testing.assert_allclose(sampling.bn_stats_at(table, 0.123)['m'],
                             table['m'][6] * coef + table['m'][7] * (1 - coef), rtol=1e-6)


def test_drawn_z_are_scaled_truncnorm(sampler):
  z = sampler.draw_z(4000, truncation=0.3, seed=0)
  assert z.shape == (4000, 16)
  assert np.abs(z).max() <= 0.6 + 1e-6 and np.abs(z).max() > 0.55
  # std of truncnorm(-2, 2) is 0.880.
  assert abs(z.std() / 0.3 - 0.880) < 0.01


def test_interpolations_end_at_samples(sampler):
  z = sampler.draw_z(2, truncation=0.7, seed=3)
  line = sampler.interpolate_z(z[0], z[1], 2, 3, truncation=0.7)
  ends = sampler.sample([2, 2], z=z, truncation=0.7)
  np.testing.assert_allclose(line[[0, -1]], ends, atol=1e-5)
  across = sampler.interpolate_classes(z[0], 1, 8, 3, truncation=0.7)
  np.testing.assert_allclose(across[[0, -1]], sampler.sample([1, 8], z=z[[0, 0]],
                                                             truncation=0.7), atol=1e-5)


def test_truncation_outside_the_tables_is_refused(sampler):
  with pytest.raises(ValueError, match='0 < truncation <= 1'):
    sampler.sample([0], truncation=1.5)
  with pytest.raises(ValueError, match='truncation'):
    sampler.sample([0], truncation=0)


def test_meta_and_shapes(converted):
  meta = json.loads((converted / 'meta.json').read_text())
  assert meta['truncation_convention'] == 'tfhub' and meta['num_bn_stats'] == 51
  assert meta['source'] == 'huggingface' and not meta['has_discriminator']
  m = meta['model']
  assert (m['family'], m['resolution'], m['ch'], m['g_attn']) == ('biggan_deep', 128, 4, '64')
  assert m['bn_eps'] == m['sn_eps'] == m['output_bn_eps'] == 1e-4
  assert m['output_conv_channels'] == 4


def test_biggan_deep_128_names_and_size():
  """The package's biggan-deep-128 is the documented one, and ours has its size."""
  from pytorch_pretrained_biggan import BigGAN, BigGANConfig
  documented = {}
  for line in (DATA / 'hf_biggan_deep128_state_dict.txt').read_text().splitlines():
    if line and not line.startswith('#'):
      name, shape, _ = line.split('\t')
      documented[name] = tuple(int(d) for d in shape.strip('()').split(',') if d.strip())
  state = BigGAN(BigGANConfig()).state_dict()
  assert {k: tuple(v.shape) for k, v in state.items()} == documented
  m = huggingface.model_config(BigGANConfig().to_dict())
  abstract = jax.eval_shape(
      lambda: models.create_generator(m).init(
          {'params': jax.random.key(0)}, np.zeros((1, 128), np.float32),
          np.zeros((1,), np.int32), train=False))
  assert sum(x.size for x in jax.tree.leaves(abstract['params'])) == 50_388_609  # the package's
  assert (m.g_attn, m.output_conv_channels, m.bn_eps) == ('64', 128, 1e-4)


# ------------------------------------------------------------------- CLIs

def test_convert_and_sample_from_the_command_line(hf_folder, tmp_path, capsys):
  """The two CLIs in this process, as `python -m` runs them (main(sys.argv))."""
  out = tmp_path / 'deep'
  assert convert_main.main(['convert', '--source=huggingface', f'--input={hf_folder}',
                            f'--output={out}']) == 0
  stdout = capsys.readouterr().out
  assert "biggan_deep 128x128" in stdout and "'tfhub'" in stdout
  png = tmp_path / 'grid.png'
  assert sample.main(['sample', f'--checkpoint={out}', f'--output={png}', '--labels=1,2',
                      '--truncation=0.4']) == 0
  assert png.stat().st_size > 0
  capsys.readouterr()
  assert sample.main(['sample', f'--checkpoint={out}', f'--output={tmp_path / "x.png"}',
                      '--truncation=1.5']) == 2
  one_error_line(capsys, 'error: truncation=1.5')
  assert not (tmp_path / 'x.png').exists()


def _copy(hf_folder, tmp_path, name='bad'):
  folder = tmp_path / name
  shutil.copytree(hf_folder, folder)
  return folder


@pytest.mark.parametrize('case, needles', [
    ('no_weights', ['needs config.json and pytorch_model.bin']),
    ('truncated', ['pytorch_model.bin', 'is the file complete']),
    ('bad_json', ['config.json', 'unreadable']),
    ('wrong_layers', ['layers', "BigGAN-deep 128's"]),
    ('wrong_width', ['shape']),
    ('pytorch_folder', ['BigGAN-PyTorch weights folder', '--source=biggan-pytorch']),
])
def test_bad_input_is_one_line(case, needles, hf_folder, tmp_path, capsys):
  folder = _copy(hf_folder, tmp_path)
  if case == 'no_weights':
    (folder / 'pytorch_model.bin').unlink()
  elif case == 'truncated':
    data = (folder / 'pytorch_model.bin').read_bytes()
    (folder / 'pytorch_model.bin').write_bytes(data[:len(data) // 2])
  elif case == 'bad_json':
    (folder / 'config.json').write_text('{"output_dim": 12')
  elif case == 'wrong_layers':
    cfg = json.loads((folder / 'config.json').read_text())
    cfg['layers'] = cfg['layers'][:-2]
    (folder / 'config.json').write_text(json.dumps(cfg))
  elif case == 'wrong_width':
    cfg = json.loads((folder / 'config.json').read_text())
    cfg['channel_width'] = 8
    (folder / 'config.json').write_text(json.dumps(cfg))
  elif case == 'pytorch_folder':
    for p in folder.iterdir():
      p.unlink()
    (folder / 'G_ema.pth').write_bytes(b'')
  out = tmp_path / 'out'
  code = convert_main.main(['convert', '--source=huggingface', f'--input={folder}',
                            f'--output={out}'])
  assert code == 2
  one_error_line(capsys, *needles)
  assert not out.exists()


def test_load_generator_on_the_raw_folder_says_convert(hf_folder):
  with pytest.raises(checkpoints.CheckpointError, match='--source=huggingface'):
    biggan_jax.load_generator(hf_folder)
