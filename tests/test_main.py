"""The command line: summary mode end to end, and one-line errors for bad input."""

import json
import os
import subprocess
import sys

import pytest

from biggan_jax.models import architectures, summary
from paths import CONFIG_FILES, REPO, load_config


def run_main(*args):
  return subprocess.run([sys.executable, '-m', 'biggan_jax.main', *args], cwd=REPO,
                        capture_output=True, text=True, timeout=300)


def test_summary_mode_writes_parameter_counts(tmp_path):
  result = run_main('--config=configs/tiny.py', f'--workdir={tmp_path}', '--mode=summary')
  assert result.returncode == 0, result.stderr
  with open(tmp_path / 'summary.json') as f:
    written = json.load(f)
  g, d = written['generator_params'], written['discriminator_params']
  assert g == sum(written['generator_modules'].values()) > 0
  assert d == sum(written['discriminator_modules'].values()) > 0
  assert {'shared', 'linear', 'block0', 'block2', 'attn1', 'output_conv'} <= set(
      written['generator_modules'])  # attn1: attention after the 16x16 block.
  assert written['model']['resolution'] == 32
  assert written['model']['d_ch'] == 0 and written['model']['ch'] == 4
  assert f'{g:,}' in result.stdout and f'{d:,}' in result.stdout


@pytest.mark.parametrize('args,expected', [
    (['--config=configs/tiny.py', '--config.model.resolution=100', '--mode=summary'],
     'model.resolution=100'),
    (['--config=configs/tiny.py', '--config.model.chh=8', '--mode=summary'],
     "--config.model.chh: no such config field; did you mean 'ch'?"),
    (['--config=configs/tiny.py', '--config.modle.ch=8', '--mode=summary'],
     "--config.modle.ch: no such config field ('modle'); did you mean 'model'?"),
    (['--config=configs/tiny.py', '--config.model.ch=wide', '--mode=summary'],
     '--config.model.ch=wide'),
    (['--config=configs/no_such_config.py', '--mode=summary'], 'configs/no_such_config.py'),
    (['--config=setup.cfg', '--mode=summary'], '--config=setup.cfg'),
    (['--mode=summary'], '--config'),
    (['--config=configs/tiny.py', '--coordinator_address=127.0.0.1:1', '--mode=train'],
     'go together'),
    (['--config=configs/imagenet128.py', '--mode=train', '--config.dataset.name=nope'],
     "dataset.name='nope'"),
], ids=['bad_value', 'unknown_key', 'unknown_nested_key', 'bad_type', 'missing_file', 'not_python', 'no_config',
        'partial_multihost_flags', 'unreadable_dataset'])
def test_bad_input_is_one_line_on_stderr(args, expected, tmp_path):
  result = run_main(f'--workdir={tmp_path}', *args)
  assert result.returncode == 2
  assert result.stderr.count('\n') == 1, result.stderr
  assert result.stderr.startswith('error: ')
  assert expected in result.stderr
  assert not (tmp_path / 'summary.json').exists()


# BigGAN-PyTorch's parameter counts: its BigGAN.py / BigGANdeep.py built with these configs
# (the paper's Table 1 gives 158.3M for G + D at 128; upstream has no 512 D).
PAPER_COUNTS = {
    'imagenet128.py': (70_433_988, 87_982_370),
    'imagenet256.py': (82_097_604, 99_225_890),
    'imagenet512.py': (82_296_804, None),
    'imagenet128_deep.py': (50_244_484, 34_590_210),
    'cifar10.py': (4_304_387, 4_207_361),  # launch_cifar_ema.sh: G_shared off, no hier.
}


@pytest.mark.parametrize('path', CONFIG_FILES, ids=os.path.basename)
def test_summary_of_every_config(path, tmp_path):
  config = load_config(path)
  written = summary.summarize(config, str(tmp_path))
  with open(tmp_path / 'summary.json') as f:
    assert json.load(f) == written
  g_expected, d_expected = PAPER_COUNTS.get(os.path.basename(path), (None, None))
  assert written['generator_params'] == (g_expected or written['generator_params']) > 0
  assert written['discriminator_params'] == (d_expected or written['discriminator_params']) > 0
  assert written['model'] == config.model.to_dict()
  # Attention sits where the config asks, in G and in D.
  g_attn, d_attn = architectures.attention_resolutions(config.model)
  assert sum(name.startswith('attn') for name in written['generator_modules']) == len(g_attn)
  assert sum(name.startswith('attn') for name in written['discriminator_modules']) >= len(d_attn)


def test_dry_run_prints_the_plan_and_creates_nothing(tmp_path, capsys):
  from biggan_jax import main  # in-process: no subprocess for a run that builds nothing
  workdir = tmp_path / 'run'
  assert main.main(['main', f'--config={REPO / "configs" / "tiny.py"}', f'--workdir={workdir}',
                    '--dry_run']) == 0
  out = capsys.readouterr().out
  assert 'devices: 8 x cpu' in out and 'the run would train steps 1-4' in out
  assert out.rstrip().endswith('dry run: nothing was created')
  assert not workdir.exists()


# --------------------------------------------- faults that stop a run before it builds

def run_in_process(capsys, *args):
  """main.main in this process (no compile happens: each case stops before the model)."""
  from biggan_jax import main
  code = main.main(['main', '--config=configs/tiny.py', *args])
  return code, capsys.readouterr().err


def test_an_empty_workdir_is_one_line_and_writes_nothing(tmp_path, capsys, monkeypatch):
  monkeypatch.chdir(tmp_path)  # an empty --workdir would otherwise write here
  code, err = run_in_process(capsys, f'--config={REPO / "configs" / "tiny.py"}', '--workdir=')
  assert code == 2 and err.count('\n') == 1 and err.startswith('error: ')
  assert '--workdir is empty' in err
  assert list(tmp_path.iterdir()) == []


def test_a_second_run_on_a_live_workdir_names_the_holder(tmp_path, capsys, monkeypatch):
  import socket
  monkeypatch.chdir(REPO)
  (tmp_path / 'lock.json').write_text(json.dumps(
      {'host': socket.gethostname(), 'pid': os.getppid(), 'start': 0,
       'heartbeat': __import__('time').time(), 'token': 'x'}))
  code, err = run_in_process(capsys, f'--workdir={tmp_path}')
  assert code == 2 and err.count('\n') == 1 and err.startswith('error: ')
  assert f'is in use by another run: pid {os.getppid()} on {socket.gethostname()}' in err


def test_resuming_another_architecture_is_one_line(tmp_path, capsys, monkeypatch):
  import jax.numpy as jnp
  from biggan_jax.checkpoints import run_checkpoints
  monkeypatch.chdir(REPO)
  model = load_config(REPO / 'configs' / 'tiny.py').model
  model.ch = 8  # a ch 8 run's workdir, resumed with configs/tiny.py (ch 4)
  mngr = run_checkpoints.manager(tmp_path / 'checkpoints')
  run_checkpoints.save(mngr, 2, {'w': jnp.zeros(2)}, {'w': jnp.zeros(2)},
                  {'step': 2, 'kind': run_checkpoints.TRAIN_KIND, 'model': model.to_dict()})
  mngr.wait_until_finished()
  code, err = run_in_process(capsys, f'--workdir={tmp_path}')
  assert code == 2 and err.count('\n') == 1
  assert 'model.ch (8 there, 4 here)' in err and '--config.model.ch=8' in err


def test_a_read_only_workdir_is_one_line(tmp_path, capsys, monkeypatch):
  """What a read-only mount raises at the first write (the tests may run as root, for whom
  permissions do not stop writes)."""
  import errno
  from etils import epath
  monkeypatch.chdir(REPO)

  def read_only(self, *args, **kwargs):
    raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))
  monkeypatch.setattr(type(epath.Path(str(tmp_path))), 'mkdir', read_only)
  code, err = run_in_process(capsys, f'--workdir={tmp_path}/run')
  assert code == 2 and err.count('\n') == 1
  assert err == (f'error: cannot write {tmp_path}/run (workdir {tmp_path}/run): Read-only file '
                 'system; checkpoints written before are kept\n')
