"""notebooks/biggan_jax_colab.ipynb runs top to bottom (nbclient, CPU), so it cannot silently rot.

- From its install cell: a wheel built from this checkout goes into a fresh
  virtual environment (--system-site-packages, so JAX and the rest come from
  this machine, and pip runs with --no-deps: no network), its kernel runs the
  notebook, and `load_generator('biggan-deep-128')` downloads a tiny release
  from a loopback server, converts it and draws every figure. This proves the
  wheel's contents (package data, configs), the install cell and the download
  path; the wheel's dependency lists are checked as metadata (Requires-Dist),
  not resolved: what they pull onto a real Colab runtime is not tested here.
- A failing install raises in the install cell, and no later cell runs.
- On a tiny converted checkout directory, with this checkout's biggan_jax.
"""

import email.parser
import json
import os
import shutil
import subprocess
import zipfile

import jax
import numpy as np
import pytest

from biggan_jax import config as config_lib
from biggan_jax import models
from biggan_jax.checkpoints import converted as checkpoint_dir
import http_fixture
from paths import REPO
import venvs

nbclient = pytest.importorskip('nbclient')
nbformat = pytest.importorskip('nbformat')

NOTEBOOK = REPO / 'notebooks' / 'biggan_jax_colab.ipynb'
IMAGE_CELLS = ('class-grid', 'interpolate-z', 'interpolate-classes')
TRAINING_ONLY = {'tensorflow', 'tensorflow-cpu', 'tensorflow-datasets', 'clu', 'tensorboard',
                 'torch', 'scikit-learn'}


def run_notebook(tmp_path, monkeypatch, kernel='python3', **env) -> dict:
  """Executes the notebook in `tmp_path` with `env` set; returns {tag: cell}."""
  for key, value in env.items():
    monkeypatch.setenv(key, str(value))
  monkeypatch.setenv('JAX_PLATFORMS', 'cpu')
  monkeypatch.delenv('XLA_FLAGS', raising=False)
  nb = nbformat.read(NOTEBOOK, as_version=4)
  client = nbclient.NotebookClient(nb, kernel_name=kernel, timeout=300,
                                   resources={'metadata': {'path': str(tmp_path)}})
  try:
    client.execute()  # raises CellExecutionError naming the failing cell
  finally:
    run_notebook.cells = {tag: cell for cell in nb.cells
                          for tag in cell.metadata.get('tags', [])}
  return run_notebook.cells


def png_outputs(cell) -> list:
  return [o for o in cell.get('outputs', []) if 'image/png' in o.get('data', {})]


def text_output(cell) -> str:
  return ''.join(o.get('text', '') for o in cell.get('outputs', []))


def assert_images_drawn(cells):
  for tag in IMAGE_CELLS:
    assert png_outputs(cells[tag]), f'cell {tag!r} drew no image: {cells[tag].outputs}'


def build_wheel(tmp_path, python) -> str:
  """A wheel of this checkout, built from a copy (no build files in the work tree)."""
  src = tmp_path / 'src'
  for name in ('biggan_jax', 'configs'):
    shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns('__pycache__'))
  for name in ('setup.cfg', 'pyproject.toml', 'README.md'):
    shutil.copy(REPO / name, src / name)
  subprocess.run([python, '-m', 'pip', 'wheel', '-q', '--no-deps', '--no-build-isolation',
                  '-w', str(tmp_path / 'dist'), str(src)], check=True, capture_output=True)
  [wheel] = (tmp_path / 'dist').glob('biggan_jax-*.whl')
  return str(wheel)


def requirements(wheel: str) -> dict[str, set[str]]:
  """{extra ('' for the base install): project names} from the wheel's Requires-Dist."""
  with zipfile.ZipFile(wheel) as z:
    metadata = z.read(next(n for n in z.namelist() if n.endswith('.dist-info/METADATA')))
  out = {}
  for line in email.parser.BytesParser().parsebytes(metadata).get_all('Requires-Dist'):
    name = line.split(';')[0].split('[')[0].split('>')[0].split('=')[0].split('<')[0].strip()
    extra = line.split('extra ==')[1].strip(' "\'') if 'extra ==' in line else ''
    out.setdefault(extra, set()).add(name.lower().replace('_', '-'))
  return out


def fresh_venv(tmp_path, monkeypatch) -> str:
  """A venv over the packages of the environment running the tests (tests/venvs.py), and a
  Jupyter kernel that runs it; its python."""
  python = venvs.create(tmp_path / 'venv', with_pip=False)
  kernels = tmp_path / 'jupyter' / 'kernels' / 'venv'
  kernels.mkdir(parents=True)
  (kernels / 'kernel.json').write_text(json.dumps({
      'argv': [python, '-m', 'ipykernel_launcher', '-f', '{connection_file}'],
      'display_name': 'fresh venv', 'language': 'python'}))
  monkeypatch.setenv('JUPYTER_PATH', str(tmp_path / 'jupyter'))
  monkeypatch.delenv('PYTHONPATH', raising=False)
  return python


def test_notebook_from_its_install_cell_with_a_wheel_and_a_download(tmp_path, monkeypatch):
  pytest.importorskip('torch')
  pytest.importorskip('pytorch_pretrained_biggan')
  hf_fixture = pytest.importorskip('hf_fixture')
  python = fresh_venv(tmp_path, monkeypatch)
  wheel = build_wheel(tmp_path, python)
  needs = requirements(wheel)
  assert not needs[''] & TRAINING_ONLY, needs['']  # the inference set
  assert {'jax', 'flax', 'orbax-checkpoint', 'huggingface-hub', 'tqdm'} <= needs['']
  assert {'tensorflow-datasets', 'clu', 'tensorboard', 'scikit-learn'} <= needs['train']
  assert needs['convert'] == {'torch'}
  with zipfile.ZipFile(wheel) as z:
    assert 'biggan_jax/sampling/imagenet_classes.json' in z.namelist()
  folder = tmp_path / 'release'
  hf_fixture.write_tiny_hf(str(folder))
  served = {f'/biggan-deep-128-{f}': (folder / f).read_bytes()
            for f in ('config.json', 'pytorch_model.bin')}
  with http_fixture.serve(served) as server:
    cells = run_notebook(
        tmp_path, monkeypatch, kernel='venv', BIGGAN_JAX_PIP=wheel,
        BIGGAN_JAX_PIP_FLAGS='--no-deps --force-reinstall', BIGGAN_JAX_CACHE=tmp_path / 'cache',
        BIGGAN_JAX_PRETRAINED_URL=server.url, BIGGAN_JAX_NOTEBOOK_CLASSES='3,7,0,9')
    assert sum(server.gets.values()) == 2
  installed = text_output(cells['install'])
  assert f'biggan_jax from {tmp_path / "venv"}' in installed, installed  # the wheel's copy
  assert_images_drawn(cells)
  meta = checkpoint_dir.read_meta(tmp_path / 'cache' / 'pretrained' / 'biggan-deep-128')
  assert meta['source'] == 'huggingface' and meta['truncation_convention'] == 'tfhub'


def test_a_failed_install_stops_the_notebook(tmp_path, monkeypatch):
  with pytest.raises(nbclient.exceptions.CellExecutionError,
                     match=r"pip install .*no-such\.whl.* failed .*set BIGGAN_JAX_PIP"):
    run_notebook(tmp_path, monkeypatch, BIGGAN_JAX_PIP=str(tmp_path / 'no-such.whl'))
  cells = run_notebook.cells
  assert not cells['load'].get('outputs') and not png_outputs(cells['class-grid'])


def test_notebook_on_a_tiny_checkpoint(tmp_path, monkeypatch):
  """A tiny converted directory, loaded as is, with this checkout's biggan_jax."""
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
  monkeypatch.setenv('PYTHONPATH', os.pathsep.join(
      [str(REPO), *filter(None, [os.environ.get('PYTHONPATH')])]))
  cells = run_notebook(tmp_path, monkeypatch, BIGGAN_JAX_NOTEBOOK_MODEL=model_dir,
                       BIGGAN_JAX_NOTEBOOK_CLASSES='0,1,2,4',
                       BIGGAN_JAX_CACHE=tmp_path / 'cache')
  assert_images_drawn(cells)
  assert f'biggan_jax from {REPO / "biggan_jax"}' in text_output(cells['install'])
  assert len(png_outputs(cells['class-grid'])) == 1  # one grid, at TRUNCATION
  assert not (tmp_path / 'cache').exists()  # nothing downloaded or converted
