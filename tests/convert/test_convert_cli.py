"""python -m biggan_jax.convert --source=biggan-pytorch, end to end.

The author's tiny G and D (tests/testdata/biggan_pytorch_tiny64_f64.npz, see
test_convert_biggan_pytorch.py) are saved as BigGAN-PyTorch's train.py saves
them — G_ema.pth and state_dict.pth in torch 1.x's legacy format (the
published checkpoints' format; the run config pickles an nn.ReLU and numpy
scalars), D.pth in today's zip format — converted by the CLI, and sampled with
`load_generator`: the eval-mode images match upstream's to rel 1e-4.
"""

import importlib
import json
import pathlib
import shutil
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import torch

from biggan_jax import load_generator, models
from biggan_jax.checkpoints import converted as checkpoint_dir
from biggan_jax.sampling import loading
from biggan_jax.convert import biggan_pytorch as bp
from paths import REPO, TESTDATA
from cli_checks import one_error_line

convert_cli = importlib.import_module('biggan_jax.convert.__main__')
sample_cli = importlib.import_module('biggan_jax.sample')

DATA = TESTDATA / 'biggan_pytorch_tiny64_f64.npz'
RTOL = 1e-4


def rel_err(a, b):
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  return np.abs(a - b).max() / np.abs(b).max()


@pytest.fixture(scope='module')
def ref():
  return np.load(DATA)


def _state_dict(ref, prefix):
  return {k[len(prefix) + 1:]: torch.from_numpy(ref[k]) for k in ref.files
          if k.startswith(prefix + '/')}


def write_weights_folder(folder: pathlib.Path, ref, *, g=True, d=True, **config):
  """A weights/<run>/ folder as BigGAN-PyTorch's utils.save_weights writes it.

  G_ema.pth holds G after the fixture's train-mode pass, whose eval-mode output
  is G_eval_out_nchw.
  """
  folder.mkdir(parents=True)
  legacy = dict(_use_new_zipfile_serialization=False)
  if g:
    torch.save(_state_dict(ref, 'G_after_train_fwd'), folder / 'G_ema.pth', **legacy)
  if d:
    torch.save(_state_dict(ref, 'D_after_train_fwd'), folder / 'D.pth')
  run_config = {**eval(str(ref['config']), {}),  # a dict literal written by the fixture script
                'G_nl': 'inplace_relu', 'D_nl': 'inplace_relu', 'norm_style': 'bn',
                'G_activation': torch.nn.ReLU(inplace=True),
                'D_activation': torch.nn.ReLU(inplace=True), 'num_G_SV_itrs': 1,
                **config}
  torch.save({'config': run_config, 'itr': 0, 'epoch': 0, 'best_IS': np.float64(0.0),
              'best_FID': np.float32(999.0)}, folder / 'state_dict.pth', **legacy)
  return folder


def convert(*flags):
  return convert_cli.main(['convert', *flags])


@pytest.fixture(scope='module')
def weights(ref, tmp_path_factory):
  return write_weights_folder(tmp_path_factory.mktemp('weights') / 'run', ref)


@pytest.fixture(scope='module')
def converted(weights, tmp_path_factory):
  out = tmp_path_factory.mktemp('converted') / 'tiny64'
  assert convert('--source=biggan-pytorch', f'--input={weights}', f'--output={out}') == 0
  return out


def test_converted_directory_describes_itself(converted):
  meta = json.loads((converted / 'meta.json').read_text())
  assert meta['kind'] == 'biggan_jax.converted' and meta['source'] == 'biggan-pytorch'
  assert meta['truncation_convention'] == 'paper' and meta['has_discriminator'] is True
  assert meta['source_files'] == ['G_ema.pth', 'D.pth'] and meta['source_itr'] == 0
  m = meta['model']
  assert (m['resolution'], m['ch'], m['d_ch'], m['dim_z'], m['shared_dim'],
          m['num_classes'], m['g_attn'], m['d_attn'], m['hierarchical_z']) == (
              64, 4, 4, 20, 8, 5, '32', '16', True)
  assert {p.name for p in converted.iterdir()} == {'meta.json', 'generator', 'discriminator'}


def test_load_generator_samples_as_biggan_pytorch(converted, ref):
  sampler = load_generator(converted)
  assert (sampler.resolution, sampler.dim_z, sampler.num_classes) == (64, 20, 5)
  images = sampler.sample(ref['y'], z=ref['z'])
  assert images.dtype == np.float32 and images.shape == (6, 64, 64, 3)
  assert rel_err(images, ref['G_eval_out_nchw'].transpose(0, 2, 3, 1)) < RTOL


def test_discriminator_converted_for_fine_tuning(converted, ref):
  meta = checkpoint_dir.read_meta(converted)
  m = loading._model_config(meta['model'], converted)
  D = models.create_discriminator(m)
  x = jnp.asarray(ref['x_nchw'].transpose(0, 2, 3, 1), jnp.float32)
  y = jnp.asarray(ref['y'], jnp.int32)
  variables = checkpoint_dir.restore(converted, checkpoint_dir.DISCRIMINATOR,
                                     bp.expected_variables(D, x, y))
  logits = jax.jit(lambda v: D.apply(v, x, y, train=False))(variables)
  assert rel_err(logits, ref['D_eval_real'][:, 0]) < RTOL


def test_existing_output_needs_overwrite(converted, ref, tmp_path, capsys):
  out = tmp_path / 'out'
  shutil.copytree(converted, out)
  before = (out / 'meta.json').read_text()
  g_only = write_weights_folder(tmp_path / 'g_only', ref, d=False)
  assert convert('--source=biggan-pytorch', f'--input={g_only}', f'--output={out}') == 2
  one_error_line(capsys, 'exists', '--overwrite')
  assert (out / 'meta.json').read_text() == before
  assert convert('--source=biggan-pytorch', f'--input={g_only}', f'--output={out}',
                 '--overwrite') == 0
  assert checkpoint_dir.read_meta(out)['has_discriminator'] is False
  assert not (out / 'discriminator').exists()
  assert not [p for p in tmp_path.iterdir() if p.name.startswith('.')]  # no temporaries left
  # --overwrite replaces converted checkpoints only, never another folder.
  other = tmp_path / 'notes'
  other.mkdir()
  (other / 'todo.txt').write_text('keep me')
  assert convert('--source=biggan-pytorch', f'--input={g_only}', f'--output={other}',
                 '--overwrite') == 2
  one_error_line(capsys, 'not a converted checkpoint')
  assert (other / 'todo.txt').read_text() == 'keep me'


def _hf_folder(tmp_path):
  folder = tmp_path / 'hf'
  folder.mkdir()
  (folder / 'config.json').write_text('{"output_dim": 128}')
  (folder / 'pytorch_model.bin').write_bytes(b'')
  return folder


def _truncate(tmp_path, weights, name):
  folder = tmp_path / 'truncated'
  shutil.copytree(weights, folder)
  data = (folder / name).read_bytes()
  (folder / name).write_bytes(data[:len(data) // 2])
  return folder


@pytest.mark.parametrize('case, needles', [
    ('huggingface', ['BigGAN-PyTorch weights folder', 'use --source=biggan-pytorch']),
    ('unknown_source', ['--source=onnx', 'unknown']),
    ('hf_folder', ['huggingface', 'not a BigGAN-PyTorch weights folder']),
    ('d_only', ['only a discriminator (D.pth)']),
    ('no_state_dict', ['no state_dict.pth']),
    ('truncated_g', ['G_ema.pth', 'is the file complete']),
    ('truncated_state_dict', ['state_dict.pth', 'is the file complete']),
    ('wrong_config', ['shape']),
    ('missing_input', ['no such directory']),
    ('narrow_attention', ['G_attn=32: its attention gets 4 channels (G_ch=1 x 4)',
                          '>= 8 channels only']),
    ('unknown_model', ["unsupported BigGAN-PyTorch options: model='BigGANv3'"]),
    ('unshared_hier', ['G_shared=False with hier']),
])
def test_bad_input_is_one_line(case, needles, weights, ref, tmp_path, capsys):
  source, folder = 'biggan-pytorch', weights
  if case == 'huggingface':
    source = 'huggingface'
  elif case == 'unknown_source':
    source = 'onnx'
  elif case == 'hf_folder':
    folder = _hf_folder(tmp_path)
  elif case == 'd_only':
    folder = write_weights_folder(tmp_path / 'd_only', ref, g=False)
  elif case == 'no_state_dict':
    folder = tmp_path / 'no_sd'
    shutil.copytree(weights, folder)
    (folder / 'state_dict.pth').unlink()
  elif case == 'truncated_g':
    folder = _truncate(tmp_path, weights, 'G_ema.pth')
  elif case == 'truncated_state_dict':
    folder = _truncate(tmp_path, weights, 'state_dict.pth')
  elif case == 'wrong_config':
    folder = write_weights_folder(tmp_path / 'wide', ref, G_ch=8)
  elif case == 'missing_input':
    folder = tmp_path / 'nowhere'
  elif case == 'narrow_attention':  # upstream builds it: its theta/phi convs are empty.
    folder = write_weights_folder(tmp_path / 'narrow', ref, G_ch=1)
  elif case == 'unknown_model':
    folder = write_weights_folder(tmp_path / 'v3', ref, model='BigGANv3')
  elif case == 'unshared_hier':
    folder = write_weights_folder(tmp_path / 'unshared_hier', ref, G_shared=False)
  out = tmp_path / 'out'
  assert convert(f'--source={source}', f'--input={folder}', f'--output={out}') == 2
  one_error_line(capsys, *needles)
  assert not out.exists()


@pytest.mark.parametrize('name', ['unshared32', 'deep64'])
def test_other_families_convert_and_sample(name, tmp_path):
  """G_shared=False (launch_cifar_ema.sh's model) and BigGANdeep.py: converted by the
  CLI from a weights folder, then sampled with the fixture's z and labels."""
  ref = np.load(TESTDATA / f'biggan_pytorch_{name}_f64.npz')
  weights = write_weights_folder(tmp_path / 'run', ref)
  out = tmp_path / name
  assert convert('--source=biggan-pytorch', f'--input={weights}', f'--output={out}') == 0
  meta = checkpoint_dir.read_meta(out)
  assert meta['model']['family'] == ('biggan_deep' if name == 'deep64' else 'biggan')
  assert meta['model']['shared_embedding'] == (name == 'deep64')
  sampler = load_generator(out)
  images = sampler.sample(ref['y'], z=ref['z'])
  err = rel_err(images, ref['G_eval_out_nchw'].transpose(0, 2, 3, 1))
  print(f'{name}: converted G vs upstream eval-mode output, rel err {err:.1e}')
  assert err < RTOL
  assert meta['has_discriminator']  # its numbers: test_biggan_pytorch.py, for both fixtures.
  if name == 'unshared32':
    with pytest.raises(ValueError, match='no shared class embedding'):
      sampler.interpolate_classes(ref['z'][0], 0, 1, steps=3)


def test_bad_tfhub_input_from_the_command_line(tmp_path):
  """The real entry point (python -m biggan_jax.convert): one line on stderr even after
  TensorFlow (whose C++ logging writes there) has read a corrupt module; exit code 2."""
  module = tmp_path / 'biggan-deep-128'
  (module / 'variables').mkdir(parents=True)
  (module / 'variables' / 'variables.index').write_bytes(b'not a checkpoint index')
  (module / 'saved_model.pb').write_bytes(b'')
  out = tmp_path / 'out'
  proc = subprocess.run(
      [sys.executable, '-m', 'biggan_jax.convert', '--source=tfhub',
       f'--input={module}', f'--output={out}'],
      capture_output=True, text=True, timeout=120, cwd=REPO, check=False)
  assert proc.returncode == 2, proc.stderr
  assert proc.stderr.strip() == (f'error: {module}/variables/variables: unreadable checkpoint '
                                 '(OpError); is the download complete?')
  assert not out.exists()


@pytest.mark.parametrize('case, needles', [
    ('weights_folder', ['BigGAN-PyTorch weights folder', 'convert it first']),
    ('no_generator', ['holds no generator']),
    ('truncated', ['generator', 'cannot restore', 'complete']),
])
def test_sample_refuses_wrong_checkpoints(case, needles, weights, converted, tmp_path, capsys):
  checkpoint = weights
  if case in ('no_generator', 'truncated'):
    checkpoint = tmp_path / 'ckpt'
    shutil.copytree(converted, checkpoint)
    if case == 'no_generator':  # what is left is a D-only directory.
      shutil.rmtree(checkpoint / 'generator')
    else:
      biggest = max((p for p in (checkpoint / 'generator').rglob('*') if p.is_file()),
                    key=lambda p: p.stat().st_size)
      biggest.write_bytes(biggest.read_bytes()[:1000])
  out = tmp_path / 'samples.npy'
  assert sample_cli.main(['sample', f'--checkpoint={checkpoint}', f'--output={out}']) == 2
  one_error_line(capsys, *needles)
  assert not out.exists()


def test_convert_to_gcs_and_sample_from_it(weights, ref, gcs, tmp_path, capsys):
  """--output=gs://...: the converted directory lands in the bucket (GCS emulator), written
  in place with meta.json last (no rename there), replaced only with --overwrite, and
  load_generator reads it back from there, sampling as upstream does."""
  out = gcs.bucket('converted') + '/tiny64'
  g_only = write_weights_folder(tmp_path / 'g_only', ref, d=False)
  assert convert('--source=biggan-pytorch', f'--input={g_only}', f'--output={out}') == 0
  assert convert('--source=biggan-pytorch', f'--input={weights}', f'--output={out}') == 2
  one_error_line(capsys, 'exists', '--overwrite')
  assert checkpoint_dir.read_meta(out)['has_discriminator'] is False
  assert convert('--source=biggan-pytorch', f'--input={weights}', f'--output={out}',
                 '--overwrite') == 0
  assert checkpoint_dir.read_meta(out)['has_discriminator'] is True
  images = load_generator(out).sample(ref['y'], z=ref['z'])
  assert rel_err(images, ref['G_eval_out_nchw'].transpose(0, 2, 3, 1)) < RTOL
