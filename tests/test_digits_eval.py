"""python -m biggan_jax.digits_eval on a few steps of configs/digits.py (the README's demo); one-line
errors for what it cannot judge; --help."""

import json

import jax
import numpy as np
import pytest
from PIL import Image

from biggan_jax import config as config_lib
from biggan_jax import digits_eval, main
from biggan_jax.training import loop
from biggan_jax.utils import images
from cli_checks import one_error_line
from paths import REPO


def digits_config(**overrides):
  return config_lib.from_file(REPO / 'configs' / 'digits.py', **overrides)


def test_help_exits_0(capsys):
  for cli, name in ((digits_eval, 'digits_eval'), (main, 'main')):
    assert cli.main([name, '--help']) == 0
    out = capsys.readouterr().out
    assert '--workdir' in out


def test_runs_it_cannot_judge(tmp_path, capsys):
  assert digits_eval.main(['digits_eval']) == 2
  one_error_line(capsys, '--workdir')
  assert digits_eval.main(['digits_eval', f'--workdir={tmp_path}/missing']) == 2
  one_error_line(capsys, 'missing: no such directory')
  # A run of another config: refused before anything is restored (it gave nan rows).
  run = tmp_path / 'tiny'
  (run / 'checkpoints').mkdir(parents=True)
  (run / 'config.json').write_text(json.dumps({'dataset': {'name': 'fake'}}))
  assert digits_eval.main(['digits_eval', f'--workdir={run}']) == 2
  one_error_line(capsys, "a run on 'fake' data", 'configs/digits.py')
  (run / 'config.json').write_text(json.dumps({'dataset': {'name': 'digits'}}))
  (run / 'checkpoints').rmdir()
  assert digits_eval.main(['digits_eval', f'--workdir={run}']) == 2
  one_error_line(capsys, 'no checkpoints/')
  assert not (run / 'digits_eval.json').exists()


@pytest.fixture
def optimised_machine_code():
  """LLVM's optimisation back on (conftest compiles at -O0): the digits model's steps,
  standing statistics, sheets and judged samples run longer at -O0 than they compile
  (106 s against 22 s of CPU besides compiling, measured in the suite)."""
  before = jax.config.read('jax_disable_most_optimizations')
  jax.config.update('jax_disable_most_optimizations', False)
  yield
  jax.config.update('jax_disable_most_optimizations', before)


def test_digits_config_trains_and_evaluates(tmp_path, optimised_machine_code):
  config = digits_config(total_steps=3, log_every=1)
  config.dataset.data_dir = str(tmp_path / 'data')
  workdir = tmp_path / 'run'
  state = loop.train_and_evaluate(config, str(workdir))
  assert int(state.step) == 3
  assert (workdir / 'truncation.png').exists()
  sheet = np.asarray(Image.open(workdir / 'truncation.png'))
  tile = 16 * images.upscale_factor(16) + images.PADDING
  # A row per class, a column per threshold (4), labelled above: as the sample sheets.
  assert sheet.shape == (images.LABEL_HEIGHT + 10 * tile + images.PADDING,
                         4 * tile + images.PADDING, 3)
  samples = np.asarray(Image.open(workdir / 'samples' / 'step_0000003.png'))
  assert samples.shape == (10 * tile + images.PADDING, 10 * tile + images.PADDING, 3)

  assert digits_eval.main(['digits_eval', f'--workdir={workdir}', '--num_per_class=8']) == 0
  result = json.loads((workdir / 'digits_eval.json').read_text())
  assert result['step'] == 3
  assert result['real_test_accuracy'] > 0.95  # the classifier itself is good
  assert len(result['per_class']) == 10
  assert 0 <= result['generated_accuracy'] <= 1 and result['diversity_mean'] >= 0
