"""notebooks/biggan_jax_colab.ipynb runs top to bottom (nbclient, python3 kernel, CPU)
on tiny local models, and draws its grid and interpolations, so it cannot silently rot."""

import os

import jax
import numpy as np
import pytest

from biggan_jax import config as config_lib
from biggan_jax import models
from biggan_jax.checkpoints import converted as checkpoint_dir
from paths import REPO

nbclient = pytest.importorskip('nbclient')
nbformat = pytest.importorskip('nbformat')

NOTEBOOK = REPO / 'notebooks' / 'biggan_jax_colab.ipynb'
IMAGE_CELLS = ('class-grid', 'interpolate-z', 'interpolate-classes')


def run_notebook(tmp_path, monkeypatch, **env) -> dict:
  """Executes the notebook in `tmp_path` with its parameters' variables set to `env`;
  returns {tag: cell} of the executed cells."""
  for key, value in env.items():
    monkeypatch.setenv(key, str(value))
  # The kernel imports this checkout's biggan_jax on one CPU device.
  monkeypatch.setenv('PYTHONPATH', os.pathsep.join(
      [str(REPO), *filter(None, [os.environ.get('PYTHONPATH')])]))
  monkeypatch.setenv('JAX_PLATFORMS', 'cpu')
  monkeypatch.delenv('XLA_FLAGS', raising=False)
  nb = nbformat.read(NOTEBOOK, as_version=4)
  client = nbclient.NotebookClient(nb, kernel_name='python3', timeout=300,
                                   resources={'metadata': {'path': str(tmp_path)}})
  client.execute()  # raises CellExecutionError naming the failing cell
  cells = {}
  for cell in nb.cells:
    for tag in cell.metadata.get('tags', []):
      cells[tag] = cell
  return cells


def png_outputs(cell) -> list:
  return [o for o in cell.get('outputs', []) if 'image/png' in o.get('data', {})]


def assert_images_drawn(cells):
  for tag in IMAGE_CELLS:
    assert png_outputs(cells[tag]), f'cell {tag!r} drew no image: {cells[tag].outputs}'
  # Not the pip install: this is not Colab.
  assert not cells['install'].get('outputs')


def test_notebook_on_a_tiny_checkpoint(tmp_path, monkeypatch):
  """A tiny converted directory (checkpoint_dir.save), loaded as is."""
  m = config_lib.from_file(REPO / 'configs' / 'tiny.py').model
  m.resolution = 16
  m.g_attn = m.d_attn = ''
  generator = models.create_generator(m)
  variables = generator.init({'params': jax.random.PRNGKey(0)},
                             np.zeros((1, m.dim_z), np.float32), np.zeros((1,), np.int32),
                             train=False)
  model_dir = tmp_path / 'tiny'
  checkpoint_dir.save(model_dir, {'source': 'test', 'model': m.to_dict(),
                                  'truncation_convention': 'paper'}, variables)
  cells = run_notebook(tmp_path, monkeypatch, BIGGAN_JAX_NOTEBOOK_CHECKPOINT=model_dir,
                       BIGGAN_JAX_NOTEBOOK_CLASSES='0,1,2,4')
  assert_images_drawn(cells)
  assert len(png_outputs(cells['class-grid'])) == 1  # one grid, at TRUNCATION
  assert not (tmp_path / 'biggan_jax_models').exists()  # nothing downloaded or converted


def test_notebook_converts_a_huggingface_folder(tmp_path, monkeypatch):
  """The convert-on-the-fly path, on a tiny pytorch-pretrained-BigGAN folder."""
  pytest.importorskip('torch')
  pytest.importorskip('pytorch_pretrained_biggan')
  pytest.importorskip('biggan_jax.convert.huggingface')
  hf_fixture = pytest.importorskip('hf_fixture')
  folder = hf_fixture.write_tiny_hf(str(tmp_path / 'tiny-hf'))
  work = tmp_path / 'models'
  cells = run_notebook(tmp_path, monkeypatch, BIGGAN_JAX_NOTEBOOK_HF_FOLDER=folder,
                       BIGGAN_JAX_NOTEBOOK_WORKDIR=work, BIGGAN_JAX_NOTEBOOK_CLASSES='3,7,0,9')
  assert_images_drawn(cells)
  meta = checkpoint_dir.read_meta(work / 'tiny-hf-jax')
  assert meta['source'] == 'huggingface' and meta['truncation_convention'] == 'tfhub'
