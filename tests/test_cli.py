"""cli.py: --verbosity, the convention every CLI shares."""

import importlib.util
import os
import subprocess
import sys

from absl import flags
from absl import logging
import pytest

from biggan_jax import cli
from cli_checks import one_error_line


def _tool():
  """A CLI as cli.run runs it; records the absl level its body ran at."""
  values, seen = cli.flag_values(), []

  def body(argv):
    cli.parse(values, argv)
    seen.append(logging.get_verbosity())
    return ''
  return values, seen, body


@pytest.mark.parametrize('args,level', [([], logging.WARNING), (['--verbosity=info'], logging.INFO),
                                        (['--verbosity=debug'], logging.DEBUG)])
def test_verbosity_sets_absl_level_while_the_tool_runs(args, level):
  values, seen, body = _tool()
  before = logging.get_verbosity()
  assert cli.run('doc', values, ['tool', *args], lambda: body(['tool', *args])) == 0
  assert seen == [level]
  assert logging.get_verbosity() == before  # the caller's own level comes back


def test_bad_verbosity_is_one_line(capsys):
  values, _, body = _tool()
  argv = ['tool', '--verbosity=loud']
  assert cli.run('doc', values, argv, lambda: body(argv)) == cli.USAGE_ERROR
  one_error_line(capsys, '--verbosity', 'loud')


def test_every_cli_takes_verbosity():
  from biggan_jax import analysis, digits_eval, evaluate, fid, main, sample
  from biggan_jax.convert import __main__ as convert
  for module in (analysis, convert, digits_eval, evaluate, fid, main, sample):
    assert isinstance(module.FLAGS['verbosity'], flags.Flag), module.__name__


def test_platforms_leave_out_an_absent_tpu(tmp_path, monkeypatch):
  monkeypatch.delenv('JAX_PLATFORMS', raising=False)
  monkeypatch.setattr(cli.importlib.util, 'find_spec', lambda name: object())  # libtpu "installed".
  monkeypatch.setattr(cli.importlib.metadata, 'entry_points', lambda group: [])
  assert cli.platforms_without_absent_tpu(dev=str(tmp_path)) == 'cpu'
  (tmp_path / 'vfio').mkdir()
  (tmp_path / 'vfio' / '0').touch()  # a v5e/v6e VM's chip.
  assert cli.platforms_without_absent_tpu(dev=str(tmp_path)) is None
  monkeypatch.setenv('JAX_PLATFORMS', 'cpu')  # the user's choice stays.
  assert cli.platforms_without_absent_tpu(dev=str(tmp_path / 'none')) is None


@pytest.mark.skipif(importlib.util.find_spec('libtpu') is None, reason='needs libtpu ([tpu] extra)')
def test_a_cli_on_a_machine_without_tpu_does_not_start_libtpu(monkeypatch):
  """With libtpu installed and no TPU, JAX's start-up used to print libtpu's
  'could not determine TPU accelerator type' warnings from every CLI."""
  monkeypatch.delenv('JAX_PLATFORMS', raising=False)
  if cli.platforms_without_absent_tpu() is None:
    pytest.skip('this machine has a TPU')
  env = {k: v for k, v in os.environ.items() if k != 'XLA_FLAGS'}
  code = ('from biggan_jax import cli; cli.skip_absent_tpu(); import jax; '
          'print(jax.default_backend())')
  result = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True,
                          text=True, timeout=300, check=True)
  assert result.stdout.strip() in ('cpu', 'gpu'), result.stdout
  assert 'TPU' not in result.stderr, result.stderr


@pytest.mark.parametrize('code', [2, 0])
def test_exit_after_an_error_does_not_wait_for_background_threads(tmp_path, code):
  """Orbax's threads of a save that failed with GCS gone wait 300 s for signals; the
  process ends with the error. A run that succeeded still lets its threads finish."""
  done = tmp_path / 'thread_finished'
  program = (
      'import pathlib, sys, threading, time\n'
      'from biggan_jax import cli\n'
      f'def work():\n  time.sleep(4)\n  pathlib.Path({str(done)!r}).touch()\n'
      'threading.Thread(target=work).start()\n'
      "print('error: storage gone', file=sys.stderr)\n"
      f'cli.exit({code})\n')
  result = subprocess.run([sys.executable, '-c', program], capture_output=True, text=True,
                          timeout=120)
  assert result.returncode == code
  assert result.stderr.strip() == 'error: storage gone'
  assert done.exists() == (code == 0)  # 2: gone before the thread's 4 s were up.
