"""A non-editable install (`pip install .`) ships every package and the configs.

The wheel is installed with --no-deps into a venv that sees this machine's
packages, so nothing is downloaded; the checks run from outside the checkout.
"""

import subprocess
import sys

import pytest

from paths import REPO

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
  venv = tmp_path / 'venv'
  subprocess.run([sys.executable, '-m', 'venv', '--system-site-packages', str(venv)], check=True)
  python = str(venv / 'bin' / 'python')
  subprocess.run([python, '-m', 'pip', 'install', '-q', '--no-deps', '--no-build-isolation',
                  str(REPO)], check=True, capture_output=True)
  result = subprocess.run([python, '-c', CHECK], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
  assert result.returncode == 0 and result.stdout.strip() == 'ok', result.stderr[-2000:]
