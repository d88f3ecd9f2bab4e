"""The loop's fault checks: finiteness, signals, the per-step verdict, disk errors."""

import errno
import logging
import os
import signal

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from biggan_jax import errors
from biggan_jax.training import faults, sharding


def test_all_finite_looks_at_every_float_leaf():
  tree = {'w': jnp.ones((3, 3)), 'step': jnp.int32(2), 'key': jax.random.PRNGKey(0),
          'half': jnp.ones(2, jnp.bfloat16)}
  assert bool(faults.all_finite(tree))
  for leaf, bad in (('w', jnp.inf), ('half', jnp.nan)):
    broken = dict(tree, **{leaf: tree[leaf].at[0].set(bad)})
    assert not bool(jax.jit(faults.all_finite)(broken)), leaf
  assert bool(faults.all_finite({}))


@pytest.mark.parametrize('signum', [signal.SIGTERM, signal.SIGINT])
def test_sigterm_and_sigint_set_the_flag(signum):
  before = signal.getsignal(signum)
  preemption = faults.Preemption()
  try:
    assert not preemption.requested
    os.kill(os.getpid(), signum)
    assert preemption.requested
  finally:
    preemption.close()
  assert signal.getsignal(signum) is before


def test_a_second_ctrl_c_interrupts_at_once():
  preemption = faults.Preemption()
  try:
    os.kill(os.getpid(), signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
      os.kill(os.getpid(), signal.SIGINT)
  finally:
    preemption.close()


def test_the_verdict_comes_one_step_late_and_combines_every_device():
  mesh = sharding.make_mesh()
  monitor = faults.StepMonitor(mesh)
  assert monitor.push(1, jnp.asarray(True), False) is None
  assert monitor.push(2, jnp.asarray(False), True) == faults.Verdict(1, True, False)
  assert monitor.current() == faults.Verdict(2, False, True)
  assert monitor.push(3, jnp.asarray(True), False) == faults.Verdict(2, False, True)
  monitor.reset()
  assert monitor.current() is None


def test_a_read_only_or_full_disk_is_one_line():
  with pytest.raises(faults.DiskError) as error:
    with faults.disk_errors('/runs/x'):
      raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), '/runs/x/metrics.jsonl')
  assert str(error.value) == ('cannot write /runs/x/metrics.jsonl (workdir /runs/x): No space '
                              'left on device; checkpoints written before are kept')
  assert isinstance(error.value, errors.TrainingError)


@pytest.fixture
def small_files():
  """Writes past 64 kB fail (EFBIG, RLIMIT_FSIZE) for the test: a full disk, without root."""
  import resource
  limits = resource.getrlimit(resource.RLIMIT_FSIZE)
  handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a kill
  resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, limits[1]))
  yield
  resource.setrlimit(resource.RLIMIT_FSIZE, limits)
  signal.signal(signal.SIGXFSZ, handler)


def test_a_failed_checkpoint_write_is_one_line_and_keeps_older_ones(tmp_path, request):
  """Orbax's failure on a full disk (on a full tmpfs: RESOURCE_EXHAUSTED ... No space left
  on device, a ValueError), here from a file-size limit."""
  from biggan_jax.checkpoints import run_checkpoints
  mngr = run_checkpoints.manager(tmp_path / 'checkpoints', max_to_keep=3)
  tree = {'w': jnp.asarray(np.random.default_rng(0).standard_normal(100_000), jnp.float32)}
  run_checkpoints.save(mngr, 1, tree, tree, {'step': 1})
  mngr.wait_until_finished()
  request.getfixturevalue('small_files')
  with pytest.raises(faults.DiskError) as error:
    with faults.checkpoint_errors(2, mngr):
      run_checkpoints.save(mngr, 2, tree, tree, {'step': 2})
      mngr.wait_until_finished()
  message = str(error.value)
  assert message.startswith(f'checkpoint 2 could not be written to {tmp_path}/checkpoints (')
  assert message.endswith('); the checkpoints before it are kept') and '\n' not in message
  assert 'File too large' in message
  assert run_checkpoints.manager(tmp_path / 'checkpoints', read_only=True).all_steps() == [1]


def test_orbax_tracebacks_are_dropped_from_the_log(caplog):
  record = logging.LogRecord('absl', logging.ERROR, '/x/orbax/checkpoint/async.py', 1,
                             'save failed', (), (ValueError, ValueError('x'), None))
  faults._NoTracebacks().filter(record)
  assert record.exc_info is None and record.getMessage() == 'save failed'
