"""Installs: a non-editable install ships every package and the configs, and the base
install is the inference set.

- The wheel is installed with --no-deps into a venv that sees the packages of
  the environment running the tests (tests/venvs.py), so nothing is downloaded;
  the checks run from outside the checkout.
- The inference set works with TensorFlow, TFDS, clu, TensorBoard, torch and
  scikit-learn absent, and what needs them says how to install it. A subprocess
  hides those packages (an import hook raising ModuleNotFoundError, as on a
  machine without them), then imports every inference module and runs:
  sampling from a converted checkpoint, the torch-free conversion of a
  pytorch-pretrained-BigGAN folder, the fid CLI; `main` (training) and
  `digits_eval` answer with the extra to install. setup.cfg's lists themselves
  are checked as the wheel's Requires-Dist in tests/test_notebook.py.
"""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from biggan_jax import config as config_lib
from biggan_jax import models
from biggan_jax.checkpoints import converted
from paths import REPO
import venvs

CHECK = '''
import pathlib, biggan_jax
from biggan_jax import config as config_lib
from biggan_jax.checkpoints import init_from
assert 'site-packages' in biggan_jax.__file__, biggan_jax.__file__
folder = init_from.shipped_configs()
assert folder is not None and (folder / 'tiny.py').is_file(), folder
digits = config_lib.from_file(str(folder / 'digits.py'))
source = init_from.Source(pathlib.Path('/x'), 'converted', digits.model.to_dict(), True)
try:
  init_from.check_architecture(config_lib.from_file(str(folder / 'tiny.py')), source)
except init_from.InitFromError as e:
  assert 'biggan_jax/configs/digits.py or add' in str(e), e
else:
  raise AssertionError('no InitFromError')
import biggan_jax.main, biggan_jax.sample, biggan_jax.fid, biggan_jax.evaluate
import biggan_jax.analysis, biggan_jax.digits_eval, biggan_jax.convert.__main__
import biggan_jax.training.loop, biggan_jax.data.pipeline, biggan_jax.evaluation.protocol
print('ok')
'''


@pytest.mark.timeout(600)
def test_installed_package_finds_its_configs(tmp_path):
  python = venvs.create(tmp_path / 'venv')
  subprocess.run([python, '-m', 'pip', 'install', '-q', '--no-deps', '--no-build-isolation',
                  str(REPO)], check=True, capture_output=True)
  result = subprocess.run([python, '-c', CHECK], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
  assert result.returncode == 0 and result.stdout.strip() == 'ok', result.stderr[-2000:]


ABSENT = ('tensorflow', 'tensorflow_datasets', 'tensorboard', 'clu', 'torch', 'torchvision',
          'sklearn', 'tensorflow_hub')
INFERENCE_MODULES = (
    'biggan_jax.sample', 'biggan_jax.fid', 'biggan_jax.evaluate', 'biggan_jax.analysis',
    'biggan_jax.convert.__main__', 'biggan_jax.convert.huggingface',
    'biggan_jax.sampling.loading', 'biggan_jax.checkpoints.pretrained',
    'biggan_jax.sampling', 'biggan_jax.evaluation.protocol', 'biggan_jax.evaluation.extractor',
    'biggan_jax.evaluation.paper_figures', 'biggan_jax.models.summary', 'biggan_jax.main',
    'biggan_jax.digits_eval')

SCRIPT = r'''
import contextlib, importlib, importlib.abc, io, json, sys
ABSENT = set(sys.argv[1].split(','))

class Absent(importlib.abc.MetaPathFinder):
  def find_spec(self, name, path, target=None):
    if name.split('.')[0] in ABSENT:
      raise ModuleNotFoundError(f'No module named {name!r}', name=name)
    return None

sys.meta_path.insert(0, Absent())
import importlib.util
_find_spec = importlib.util.find_spec
importlib.util.find_spec = lambda n, *a: None if n.split('.')[0] in ABSENT else _find_spec(n, *a)
args = json.loads(sys.argv[2])
out = {}
for m in args['modules']:
  importlib.import_module(m)

def run(cli, argv):
  err = io.StringIO()
  with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
    code = cli.main(argv)
  return code, err.getvalue().strip()

from biggan_jax import digits_eval, fid, main, sample
from biggan_jax.convert import convert
out['sample'] = run(sample, ['sample', '--checkpoint=' + args['checkpoint'], '--seeds=0-1',
                             '--output=' + args['sheet']])
meta = convert('huggingface', args['hf_folder'], args['hf_out'])
out['converted'] = [meta['source'], meta['class_names']]
out['fid_help'] = run(fid, ['fid', '--help'])[0]
out['main'] = run(main, ['main', '--config=' + args['config'], '--workdir=' + args['workdir']])
out['digits_eval'] = run(digits_eval, ['digits_eval', '--workdir=' + args['workdir']])
out['torch'] = 'torch' in sys.modules
print(json.dumps(out))
'''


def test_the_inference_set_works_without_the_training_and_torch_packages(tmp_path):
  hf_fixture = pytest.importorskip('hf_fixture')  # writing the folder needs torch
  pytest.importorskip('pytorch_pretrained_biggan')
  folder = hf_fixture.write_tiny_hf(str(tmp_path / 'tiny-hf'))
  m = config_lib.from_file(REPO / 'configs' / 'tiny.py').model
  m.resolution, m.g_attn = 16, ''
  variables = models.create_generator(m).init(
      {'params': jax.random.PRNGKey(0)}, np.zeros((1, m.dim_z), np.float32),
      np.zeros((1,), np.int32), train=False)
  converted.save(tmp_path / 'tiny', {'source': 'test', 'model': m.to_dict(),
                                     'truncation_convention': 'paper'}, variables)
  args = dict(modules=INFERENCE_MODULES, checkpoint=str(tmp_path / 'tiny'),
              sheet=str(tmp_path / 'sheet.png'), hf_folder=folder,
              hf_out=str(tmp_path / 'tiny-hf-jax'), config=str(REPO / 'configs' / 'tiny.py'),
              workdir=str(tmp_path / 'run'))
  env = {**os.environ, 'JAX_PLATFORMS': 'cpu', 'PYTHONPATH': str(REPO)}
  env.pop('XLA_FLAGS', None)
  result = subprocess.run([sys.executable, '-c', SCRIPT, ','.join(ABSENT), json.dumps(args)],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  out = json.loads(result.stdout.strip().splitlines()[-1])
  assert out['sample'][0] == 0 and (tmp_path / 'sheet.png').exists(), out['sample']
  assert out['converted'] == ['huggingface', 'imagenet']
  assert out['fid_help'] == 0 and not out['torch']
  code, err = out['main']
  assert code == 2 and err.startswith('error: training needs tensorflow, tensorflow-datasets, '
                                      'clu, not installed: pip install "biggan_jax[train]"'), err
  assert not (tmp_path / 'run').exists()
  code, err = out['digits_eval']
  assert code == 2 and 'scikit-learn' in err and 'biggan_jax[train]' in err, err
