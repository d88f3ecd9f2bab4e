"""The loop across restarts and faults on the tiny config: exact resume, a torn
metrics.jsonl, a corrupt latest checkpoint, a non-finite state, Ctrl-C, and a
forced divergence the collapse guard rolls back. (Apart from test_loop.py so
that pytest-xdist's file-per-worker split can run the two halves at once.)"""

import json
import pathlib
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from biggan_jax import config as config_lib
from biggan_jax.checkpoints import run_checkpoints
from biggan_jax.training import loop
from biggan_jax.training import state as train_state
import damage
from paths import REPO


def tiny_config(**overrides):
  return config_lib.from_file(REPO / 'configs' / 'tiny.py', **overrides)


@pytest.fixture(scope='module')
def resumed_runs(tmp_path_factory):
  base = dict(sample_every=0, checkpoint_every=2, log_every=1)
  straight = loop.train_and_evaluate(tiny_config(total_steps=4, **base),
                                      str(tmp_path_factory.mktemp('straight')))
  workdir = str(tmp_path_factory.mktemp('resumed'))
  loop.train_and_evaluate(tiny_config(total_steps=2, **base), workdir)
  # As if killed after logging step 3, in the middle of appending step 4's row:
  with open(pathlib.Path(workdir) / 'metrics.jsonl', 'a') as f:
    f.write(json.dumps({'step': 3, 'g_loss': 1.0}) + '\n' + '{"step": 4, "g_lo')
  resumed = loop.train_and_evaluate(tiny_config(total_steps=4, **base), workdir)
  return straight, resumed, workdir


def test_exact_resume(resumed_runs):
  """4 steps in one run == 2 steps + restart + 2 steps, bit for bit."""
  straight, resumed, _ = resumed_runs
  assert int(resumed.step) == int(straight.step) == 4
  for a, b in zip(jax.tree.leaves(straight), jax.tree.leaves(resumed)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_run_leaves_its_artefacts(resumed_runs):
  """Every step once in metrics.jsonl: the replayed step 3 and the torn line are gone."""
  workdir = pathlib.Path(resumed_runs[2])
  rows = [json.loads(l) for l in (workdir / 'metrics.jsonl').read_text().splitlines()]
  assert [r['step'] for r in rows] == [1, 2, 3, 4]
  assert rows[2]['g_loss'] != 1.0 and 'finite' not in rows[2]
  assert not (workdir / 'lock.json').exists()  # released at the end
  assert 'sv0/G/block0/conv1/kernel' in rows[1] and not any(k.startswith('sv') for k in rows[2])
  for key in ('d_loss_real', 'd_loss_fake', 'g_loss', 'd_real', 'd_fake', 'g_grad_norm',
              'd_grad_norm', 'lr_g', 'lr_d', 'steps_per_sec', 'images_per_sec'):
    assert key in rows[-1], key
  assert 'sv2/D/block1/conv2/kernel' in rows[3]  # tracked after steps 2, 4 (sv_every 2)
  assert (workdir / 'sigma0.png').stat().st_size > 0
  assert json.loads((workdir / 'config.json').read_text())['model']['ch'] == 4
  assert any(p.name.startswith('events.out.tfevents') for p in workdir.iterdir())
  from biggan_jax.checkpoints import run_checkpoints
  meta, ema_vars = run_checkpoints.restore_ema_generator(str(workdir / 'checkpoints'))
  assert meta['step'] == 4 and meta['model']['resolution'] == 32
  assert set(ema_vars) == {'params', 'batch_stats', 'spectral'}


def test_corrupt_latest_checkpoint_walks_back_and_resumes_exactly(resumed_runs, tmp_path):
  """A changed value in checkpoint 4's state (Orbax restores it silently: only the checksums
  see it). The run says so, sets 4 aside, resumes from 2 and reaches the uninterrupted run's
  state."""
  straight, _, workdir = resumed_runs
  import shutil
  shutil.copytree(workdir, tmp_path / 'w')
  damage.change_a_value(tmp_path / 'w' / 'checkpoints' / '4' / 'state')
  again = loop.train_and_evaluate(
      tiny_config(total_steps=4, sample_every=0, checkpoint_every=2, log_every=1),
      str(tmp_path / 'w'))
  for a, b in zip(jax.tree.leaves(straight), jax.tree.leaves(again)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  assert (tmp_path / 'w' / 'skipped_checkpoints' / '4' / 'state').is_dir()
  reason = json.loads((tmp_path / 'w' / 'skipped_checkpoints' / 'skipped.jsonl').read_text())
  assert 'its state is not what was saved (checksum mismatch in 1 of ' in reason['reason']
  assert sorted(int(p.name) for p in (tmp_path / 'w' / 'checkpoints').iterdir()
                if p.name.isdigit()) == [2, 4]


def test_non_finite_state_is_never_saved(resumed_runs):
  """The issue's lr_g=1e39: step 5's losses are finite, its update makes G inf."""
  workdir = resumed_runs[2]
  ckpt = pathlib.Path(workdir) / 'checkpoints'
  before = {p.name: p.stat().st_mtime for p in ckpt.iterdir()}
  with pytest.raises(loop.NonFiniteLossError) as error:
    loop.train_and_evaluate(
        tiny_config(total_steps=6, sample_every=0, checkpoint_every=1, lr_g=1e39), workdir)
  assert str(error.value) == ('step 5: the new state is not finite; stopped without saving '
                              'it; the newest checkpoint (step 4) and all before it are finite')
  assert {p.name: p.stat().st_mtime for p in ckpt.iterdir()} == before
  mngr = run_checkpoints.manager(ckpt, read_only=True)
  _, ema_vars = run_checkpoints.restore_ema_generator(str(ckpt))
  assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(ema_vars))
  assert mngr.latest_step() == 4


def test_sigint_saves_and_exits_zero(resumed_runs, tmp_path):
  """Ctrl-C is handled as SIGTERM is (tests/training/test_multihost.py sends SIGTERM to one
  of two hosts; tests/training/test_faults.py checks both signals' handler). A real process
  gets the signal; its programs are resumed_runs' (the same model, devices and step), so
  it reads them from the session's compilation cache."""
  proc = subprocess.Popen(
      [sys.executable, '-m', 'biggan_jax.main', f'--config={REPO}/configs/tiny.py',
       f'--workdir={tmp_path}', '--config.total_steps=100000', '--config.checkpoint_every=100000',
       '--config.sample_every=0'], cwd=REPO,
      stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
  metrics = tmp_path / 'metrics.jsonl'
  deadline = time.time() + 300
  while not (metrics.exists() and metrics.read_text().count('\n') >= 2):
    assert proc.poll() is None and time.time() < deadline, proc.stdout.read().decode()[-3000:]
    time.sleep(0.5)
  proc.send_signal(signal.SIGINT)
  out, _ = proc.communicate(timeout=300)
  assert proc.returncode == 0, out.decode()[-3000:]
  steps = [int(p.name) for p in (tmp_path / 'checkpoints').iterdir() if p.name.isdigit()]
  assert len(steps) == 1 and 2 <= steps[0] < 100000


LR_G = 5e-5  # base_config's, kept by configs/tiny.py
SPIKE_STEP = 7


def spiking_optimizers(config):
  """Adam whose lr jumps 10,000x from step SPIKE_STEP on, while lr_g is the config's own:
  a divergence at a known step that the 'lower_lr' remedy cures."""
  spike = config.lr_g == LR_G

  def lr(base):
    return lambda count: base * jnp.where(spike & (count >= SPIKE_STEP - 1), 1e4, 1.0)
  return (optax.adam(lr(config.lr_g), b1=config.b1_g, b2=config.b2_g, eps=config.eps_g),
          optax.adam(lr(config.lr_d), b1=config.b1_d, b2=config.b2_d, eps=config.eps_d))


def test_collapse_guard_rolls_back_a_forced_divergence_and_finishes_finite(tmp_path,
                                                                           monkeypatch):
  monkeypatch.setattr(train_state, 'optimizers', spiking_optimizers)
  config = tiny_config(total_steps=10, checkpoint_every=2, max_to_keep=5, log_every=1,
                       sv_every=1, sample_every=0, num_d_steps=1, num_standing_stats=1)
  config.model.resolution = 16  # no attention, one D step: a short compile
  config.model.g_attn = config.model.d_attn = ''
  config.collapse_guard.update(remedy='lower_lr', start=0)
  state = loop.train_and_evaluate(config, str(tmp_path))
  assert int(state.step) == 10
  assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(state)
             if jnp.issubdtype(x.dtype, jnp.floating))
  [event] = [json.loads(l) for l in (tmp_path / 'collapse_guard.jsonl').read_text().splitlines()]
  assert event['step'] == SPIKE_STEP and event['action'] == 'lower_lr'
  assert event['rolled_back_to'] == 6 and event['overrides'] == {'lr_g': LR_G / 2, 'lr_d': 1e-4}
  rows = [json.loads(l) for l in (tmp_path / 'metrics.jsonl').read_text().splitlines()]
  assert [r['step'] for r in rows] == list(range(1, 11))
  assert rows[-1]['lr_g'] == LR_G / 2
  meta = run_checkpoints.newest_meta(tmp_path / 'checkpoints')[1]
  assert meta['collapse_guard'] == {'overrides': event['overrides'], 'rollbacks': 1}


def test_out_of_memory_is_one_line_and_keeps_every_checkpoint(resumed_runs, tmp_path,
                                                              monkeypatch, capsys):
  """A RESOURCE_EXHAUSTED from the step (as a GPU raises it at run time) at step 6: one
  line with the levers, exit 2, step 5's checkpoint finished and step 6 never saved."""
  import dataclasses
  import shutil
  from cli_checks import one_error_line, run_main
  shutil.copytree(resumed_runs[2], tmp_path / 'w')
  build = loop.Programs.build.__func__
  calls = []

  def failing_at_the_second_step(cls, config, train):
    programs = build(cls, config, train)
    def step(state, batch):
      calls.append(1)
      if len(calls) == 2:
        raise jax.errors.JaxRuntimeError(
            'RESOURCE_EXHAUSTED: Out of memory while trying to allocate 1048576 bytes.')
      return programs.step(state, batch)
    step.lower = programs.step.lower
    return dataclasses.replace(programs, step=step)

  monkeypatch.setattr(loop.Programs, 'build', classmethod(failing_at_the_second_step))
  code = run_main(f'--config={REPO}/configs/tiny.py', f'--workdir={tmp_path / "w"}',
                  '--config.total_steps=6', '--config.checkpoint_every=1',
                  '--config.sample_every=0')
  assert code == 2
  line = one_error_line(capsys, 'error: out of memory on 8 x cpu with num_accumulations=1: ',
                        'try --config.num_accumulations=auto (or a larger num_accumulations), '
                        '--config.fsdp=True, --config.model.remat=nothing_saveable, '
                        '--config.model.dtype=bfloat16', 'nothing of this step was saved')
  assert 'Out of memory while trying to allocate 1048576 bytes' in line
  mngr = run_checkpoints.manager(tmp_path / 'w' / 'checkpoints', read_only=True)
  assert mngr.all_steps() == [4, 5]  # tiny keeps 2
  meta, _ = run_checkpoints.restore_ema_generator(str(tmp_path / 'w' / 'checkpoints'))
  assert meta['step'] == 5


def test_a_restart_compiles_nothing_from_the_workdirs_cache(tmp_path):
  """With no JAX_COMPILATION_CACHE_DIR, a run keeps JAX's persistent cache in its workdir:
  the restarted process (a preempted run's next start) loads the step instead of
  compiling it, as JAX's own log says (JAX_LOG_COMPILES: a persistent-cache hit for the
  step in the second process, none in the first).
  One device and a 16x16 model without attention keep the compiles short."""
  import os
  env = {k: v for k, v in os.environ.items() if k != 'JAX_COMPILATION_CACHE_DIR'}
  env.update(XLA_FLAGS='--xla_force_host_platform_device_count=1',
             JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS='0', JAX_LOG_COMPILES='1')
  logs = []
  for total in (1, 2):
    out = subprocess.run(
        [sys.executable, '-m', 'biggan_jax.main', f'--config={REPO}/configs/tiny.py',
         f'--workdir={tmp_path}', f'--config.total_steps={total}', '--config.sample_every=0',
         '--config.checkpoint_every=1', '--config.model.resolution=16',
         '--config.model.g_attn=', '--config.model.d_attn=', '--config.num_d_steps=1'],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    logs.append(out.stdout + out.stderr)
  assert any((tmp_path / 'compilation_cache').iterdir())
  hit = "Persistent compilation cache hit for 'jit_train_step'"
  assert hit not in logs[0] and hit in logs[1], logs[1][-3000:]
