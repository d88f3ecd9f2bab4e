"""Multi-host training equals single-host training, and preemption is agreed by all hosts.

Two processes with 2 CPU devices each (jax.distributed over localhost, as on a
pod: each process feeds its own rows of the batch, `sharding.host_to_global`
assembles them) train configs/tiny.py (at 16x16) for 2 steps; one process with 4 devices
does the same. Same global batch, same mesh size, so the losses, the EMA
generator and the full train state must agree up to float32 reduction order.

The two-host run is asked for far more steps, and only process 1 gets SIGTERM,
before its first step: the flag reaches every host through the step verdict
(training/faults.py), so both save step 2 together and exit 0, which is what
the single-host run trains to.

The three trainings run as subprocesses at the same time (about 4 minutes on 2
CPU cores), once for the module.
"""

import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from biggan_jax.checkpoints import run_checkpoints
from paths import REPO

TIMEOUT_S = 600
RTOL = 1e-5
TOTAL_STEPS = 2
LR_G = 5e-5  # base_config's lr_g, which configs/tiny.py keeps.
# configs/tiny.py at 16x16 without attention (2 D steps, as there): what is tested is
# the hosts' agreement, and the three processes compile without a cache.
TRAIN_FLAGS = ('--config=configs/tiny.py', f'--config.total_steps={TOTAL_STEPS}',
               '--config.checkpoint_every=2', '--config.sample_every=0',
               '--config.log_every=1', '--config.batch_size=8',
               '--config.model.resolution=16', '--config.model.g_attn=', '--config.model.d_attn=')

pytestmark = pytest.mark.skipif(
    not hasattr(jax, 'distributed') or not hasattr(jax.distributed, 'initialize'),
    reason='jax.distributed is not available in this JAX')


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def _env(num_devices: int) -> dict:
  """The subprocess's own device count: conftest's 8 devices must not leak in.

  Without conftest's compilation cache: JAX writes it from process 0 only, so the
  hosts' compile times can differ, and Gloo gives one host 30 s to reach a
  collective after the other. With the cache, CI once failed on that timeout.
  """
  env = dict(os.environ)
  env.update(XLA_FLAGS=f'--xla_force_host_platform_device_count={num_devices}',
             JAX_PLATFORMS='cpu', TF_CPP_MIN_LOG_LEVEL='3',
             JAX_ENABLE_COMPILATION_CACHE='false')
  return env


def _tail(path, lines=30) -> str:
  return ''.join(pathlib.Path(path).read_text(errors='replace').splitlines(True)[-lines:])


def _run_all(jobs, signal_when=None):
  """Starts every (argv, env, log) job at once; all must exit 0 within TIMEOUT_S.

  `signal_when`: (job index, text): SIGTERM goes to that job once its log holds the text.
  On a failure or timeout every job still running is killed (its whole process
  group), so no trainer outlives the test.
  """
  procs = []
  try:
    for argv, env, log in jobs:
      with open(log, 'w') as f:
        procs.append(subprocess.Popen(argv, cwd=REPO, env=env, stdout=f,
                                      stderr=subprocess.STDOUT, start_new_session=True))
    deadline = time.monotonic() + TIMEOUT_S
    while any(p.poll() is None for p in procs):
      if signal_when and signal_when[1] in pathlib.Path(jobs[signal_when[0]][2]).read_text():
        procs[signal_when[0]].send_signal(signal.SIGTERM)
        signal_when = None
      failed = [(p, log) for p, (_, _, log) in zip(procs, jobs) if p.poll() not in (None, 0)]
      if failed:
        p, log = failed[0]
        pytest.fail(f'{" ".join(p.args[2:])} exited {p.returncode}:\n{_tail(log)}')
      if time.monotonic() > deadline:
        pytest.fail(f'training did not finish within {TIMEOUT_S} s:\n{_tail(jobs[0][2])}')
      time.sleep(0.1)
    for p, (_, _, log) in zip(procs, jobs):
      assert p.returncode == 0, f'{" ".join(p.args[2:])} exited {p.returncode}:\n{_tail(log)}'
  finally:
    for p in procs:
      if p.poll() is None:
        os.killpg(p.pid, 9)
        p.wait()


@pytest.fixture(scope='module')
def workdirs(tmp_path_factory):
  root = tmp_path_factory.mktemp('multihost')
  multi, single = root / 'two_hosts', root / 'one_host'
  main = [sys.executable, '-m', 'biggan_jax.main', *TRAIN_FLAGS]
  address = f'127.0.0.1:{_free_port()}'
  # Preempted long before its end; steps 1 and 2 are the only ones it logs, samples or
  # saves without the signal, so the flag is read one step late, at step 2.
  preempted = [flag.replace(f'total_steps={TOTAL_STEPS}', 'total_steps=1000').replace(
      'log_every=1', 'log_every=2') for flag in main]
  # num_accumulations=auto: each host's choice (1: CPU reports no limit) is process 0's.
  jobs = [([*preempted, f'--workdir={multi}', f'--coordinator_address={address}',
            '--num_processes=2', f'--process_id={i}', '--config.num_accumulations=auto'],
           _env(2), root / f'host{i}.log')
          for i in range(2)]
  jobs.append(([*main, f'--workdir={single}'], _env(4), root / 'single.log'))
  _run_all(jobs, signal_when=(1, 'mesh: 4 devices over 2 processes'))
  for i in range(2):  # It really was one job over 2 processes, not 2 single-host runs.
    log = (root / f'host{i}.log').read_text()
    assert 'mesh: 4 devices over 2 processes' in log
    assert f'preempted: saved a checkpoint at step {TOTAL_STEPS}, exiting' in log, _tail(
        root / f'host{i}.log')
  assert ('num_accumulations=auto: 1 (cpu reports no device memory limit)'
          in (root / 'host0.log').read_text())
  assert ('SIGTERM: saving a checkpoint' in (root / 'host1.log').read_text()
          and 'SIGTERM' not in (root / 'host0.log').read_text())
  return multi, single


def _last_metrics(workdir) -> dict:
  lines = (workdir / 'metrics.jsonl').read_text().splitlines()
  return json.loads(lines[-1])


def _restore_state(workdir):
  """The full TrainState as a dict of host arrays, whatever topology saved it.

  The target is built from the checkpoint's own metadata, placed on one local
  device: the saving run's devices (2 hosts x 2) do not exist in this process.
  """
  handlers = {'state': ocp.StandardCheckpointHandler(),
              'ema_generator': ocp.StandardCheckpointHandler(),
              'meta': ocp.JsonCheckpointHandler()}
  mngr = ocp.CheckpointManager(str(workdir / 'checkpoints'), item_handlers=handlers,
                               options=ocp.CheckpointManagerOptions(read_only=True))
  step = mngr.latest_step()
  device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
  abstract = jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device),
                          mngr.item_metadata(step)['state'])
  out = mngr.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract)))
  return step, jax.device_get(out['state'])


def _assert_close(name, a, b, *, noise_atol=None):
  """Every leaf within rel RTOL in L2 norm; with `noise_atol`, G's noise leaves within that.

  Returns the number of leaves checked against `noise_atol`.
  """
  assert jax.tree.structure(a) == jax.tree.structure(b), name
  bad, noisy = {}, 0
  for (path, x), y in zip(jax.tree_util.tree_flatten_with_path(a)[0], jax.tree.leaves(b)):
    key = name + jax.tree_util.keystr(path)
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    assert x.shape == y.shape, key
    if noise_atol is not None and _is_bias_before_batchnorm(path):
      np.testing.assert_allclose(x, y, rtol=0, atol=noise_atol, err_msg=key)
      noisy += 1
      continue
    error = np.linalg.norm(x - y) / max(np.linalg.norm(y), 1e-30)
    if error > RTOL:
      bad[key] = float(error)
  assert not bad, f'leaves differing by more than rel {RTOL} (L2): {bad}'
  return noisy


def _is_bias_before_batchnorm(path) -> bool:
  """G's conv biases in the blocks: each feeds a BatchNorm, which removes it.

  Their exact gradient is zero, so the computed one is rounding noise, and Adam
  with beta1 = 0 turns any noise into a full-size step (at step t at most
  sqrt(t) * lr_g): these leaves follow the all-reduce order, not the data, and
  two runs agree on them only to within twice the sum of those steps.
  """
  names = [getattr(k, 'key', None) for k in path]
  return (len(names) == 3 and str(names[0]).startswith('block')
          and str(names[1]).startswith('conv') and names[2] == 'bias')


def test_preempted_hosts_saved_the_same_step(workdirs):
  multi, _ = workdirs
  assert sorted(p.name for p in (multi / 'checkpoints').iterdir()) == [str(TOTAL_STEPS)]
  assert not (multi / 'lock.json').exists()


def test_losses_agree(workdirs):
  multi, single = (_last_metrics(w) for w in workdirs)
  assert multi['step'] == single['step'] == TOTAL_STEPS
  for key in ('d_loss_real', 'd_loss_fake', 'g_loss'):
    assert multi[key] == pytest.approx(single[key], rel=RTOL), key


def test_full_state_agrees(workdirs):
  (step_m, multi), (step_s, single) = (_restore_state(w) for w in workdirs)
  assert step_m == step_s == TOTAL_STEPS
  assert int(multi['step']) == int(single['step']) == TOTAL_STEPS
  _assert_close('d_params', multi['d_params'], single['d_params'])
  noisy = _assert_close('g_params', multi['g_params'], single['g_params'],
                        noise_atol=2 * TOTAL_STEPS**1.5 * LR_G)
  assert noisy == 6, 'expected conv1/conv2/conv_sc biases of 2 G blocks: did G change?'


def test_ema_generator_agrees(workdirs):
  """`restore_ema_generator` reads both checkpoints here, on another topology."""
  (meta_m, multi), (meta_s, single) = (
      run_checkpoints.restore_ema_generator(str(w / 'checkpoints')) for w in workdirs)
  assert meta_m['step'] == meta_s['step'] == TOTAL_STEPS
  assert meta_m['model'] == meta_s['model']
  _assert_close('ema_generator', jax.device_get(multi), jax.device_get(single))
