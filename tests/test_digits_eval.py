"""python -m biggan_jax.digits_eval: one-line errors for what it cannot judge; --help."""

import json

import pytest

from biggan_jax import digits_eval, main
from cli_checks import one_error_line


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
