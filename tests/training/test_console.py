"""The console lines: durations, save counts, --dry_run's plan, the summary."""

import pytest

from biggan_jax import config as config_lib
from biggan_jax.training import console
from paths import REPO


def tiny_config(**overrides):
  return config_lib.from_file(REPO / 'configs' / 'tiny.py', **overrides)


@pytest.mark.parametrize('seconds,text', [(8.25, '8.2s'), (185, '3m05s'), (7380, '2h03m')])
def test_duration(seconds, text):
  assert console.duration(seconds) == text


@pytest.mark.parametrize('every,start,total,n', [
    (2, 0, 4, 2),    # steps 2, 4
    (3, 0, 10, 4),   # 3, 6, 9 and the last, 10
    (3, 4, 10, 3),   # resuming at 4: 6, 9, 10
    (5, 10, 10, 0),  # nothing left
    (0, 0, 10, 0)])  # off
def test_saves_count_multiples_and_the_last_step(every, start, total, n):
  assert console._saves(every, start, total) == n


def test_dry_run_plans_a_new_workdir_and_creates_nothing(tmp_path):
  workdir = tmp_path / 'run'
  text = console.dry_run(tiny_config(), str(workdir))
  assert not workdir.exists()
  assert '"batch_size": 8' in text  # the resolved config
  assert 'devices: 8 x cpu (cpu) over 1 process(es)' in text  # conftest's 8 CPU devices
  assert 'batch: 8 per update = 1 x 8' in text and 'per device 1' in text
  assert f'workdir {workdir}: new; the run would train steps 1-4' in text
  assert 'every 2 steps (2 saves; the last 2 kept)' in text
  assert 'samples/step_<N>.png  every 2 steps (2 sheets of 2x2)' in text
  assert text.endswith('dry run: nothing was created')


def test_summary_names_what_was_written_and_what_to_run(tmp_path, capsys):
  (tmp_path / 'samples').mkdir()
  for step in (2, 4):
    (tmp_path / 'samples' / f'step_{step:07d}.png').write_bytes(b'')
  (tmp_path / 'losses.png').write_bytes(b'')
  console.summary(tiny_config(), tmp_path, first=0, last=4, seconds=185.0,
                  compile_seconds=8.25, checkpoint_steps=[2, 4])
  lines = capsys.readouterr().out.splitlines()
  assert lines[0] == 'trained steps 1-4 of 4 in 3m05s (compiling the step 8.2s)'
  assert f'  {tmp_path / "checkpoints"}/  steps 2, 4' in lines
  assert f'  {tmp_path / "samples"}/  2 sample sheets, the last step_0000004.png' in lines
  assert f'  {tmp_path}/{{losses.png}}' in lines
  assert lines[lines.index('next:') + 1] == (
      f'  python -m biggan_jax.sample --checkpoint={tmp_path} --output=sheet.png')


def test_a_finished_workdir_says_so(tmp_path, capsys):
  console.already_trained(tiny_config(), tmp_path, 4, [2, 4])
  out = capsys.readouterr().out
  assert out.startswith(f'{tmp_path}: already trained to step 4 (total_steps=4); nothing to do')


def test_progress_line_shows_ada_p(capsys):
  scalars = dict(steps_per_sec=2.0, images_per_sec=32.0, d_loss_real=0.5, d_loss_fake=0.25,
                 g_loss=1.0, augment_p=0.125)
  console.progress(10, 30, scalars)
  assert capsys.readouterr().out == (
      'step 10/30 | 32.0 img/s | D 0.750 G 1.000 | p 0.125 | ETA 0h00m10s\n')
