"""What the loop does about faults: non-finite states, preemption, disk errors.

- `all_finite`, computed inside the jitted step, is one boolean for the whole
  new state and its losses: a step whose losses are finite can still make
  the parameters inf (a huge lr), and such a state must never be saved.
- `Preemption` turns SIGTERM (TPU maintenance, schedulers) and SIGINT
  (Ctrl-C) into a flag; a second Ctrl-C interrupts at once.
- `StepMonitor` combines each step's finite flag with every host's preemption
  flag in one tiny jitted reduction over the mesh and reads it one step late
  (after the next step is dispatched), so the host never waits for the
  device between steps. Every host reads the same value at the same step, so
  on a pod all hosts stop, save and exit at the same step. (JAX's own
  preemption sync point, `multihost_utils.reached_preemption_sync_point`,
  needs jax.distributed and watches SIGTERM only.)
- `disk_errors` and `checkpoint_errors` turn a read-only or full disk into
  one line naming what could not be written; checkpoints already complete
  are left as they are (Orbax writes each under a temporary name first).
"""

import contextlib
import dataclasses
import logging as py_logging
import re
import signal
import sys

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging
from jax.sharding import NamedSharding, PartitionSpec as P

from biggan_jax.errors import TrainingError
from biggan_jax.checkpoints import errors


class DiskError(TrainingError):
  """Something the run writes could not be written; the message says what and why."""


def all_finite(tree) -> jax.Array:
  """True when every floating-point leaf of `tree` is finite (a scalar bool)."""
  flags = [jnp.isfinite(x).all() for x in jax.tree.leaves(tree)
           if jnp.issubdtype(jnp.result_type(x), jnp.inexact)]
  return jnp.stack(flags).all() if flags else jnp.asarray(True)


class Preemption:
  """SIGTERM and SIGINT set `requested`; the loop saves and exits at its next check.

  `close()` puts the previous handlers back (runs inside tests and notebooks).
  """

  SIGNALS = (signal.SIGTERM, signal.SIGINT)

  def __init__(self):
    self.requested = False
    self._previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}

  def _handle(self, signum, frame):
    del frame
    if signum == signal.SIGINT and self.requested:
      raise KeyboardInterrupt
    self.requested = True
    logging.warning('%s: saving a checkpoint after this step, then exiting%s',
                    signal.Signals(signum).name,
                    ' (Ctrl-C again stops without saving)' if signum == signal.SIGINT else '')

  def close(self):
    for s, handler in self._previous.items():
      signal.signal(s, handler)


@dataclasses.dataclass(frozen=True)
class Verdict:
  step: int
  finite: bool
  preempted: bool


class StepMonitor:
  """Per step: push the step's finite flag and this host's preemption flag; read a verdict.

  `push` returns the previous step's verdict (its value was computed while
  the current step ran); `current` blocks on the step just pushed, for the
  steps that save, sample or log anyway.
  """

  def __init__(self, mesh):
    self._sharding = NamedSharding(mesh, P('data'))
    self._shape = (mesh.devices.size,)
    self._local = len([d for d in mesh.devices.flat if d.process_index == jax.process_index()])
    self._agree = jax.jit(lambda finite, flags: jnp.stack([finite, flags.max() > 0]),
                          out_shardings=NamedSharding(mesh, P()))
    self._pending = None   # (step, device array) of the newest push
    self._previous = None

  def push(self, step: int, finite: jax.Array, preempted: bool) -> Verdict | None:
    flags = jax.make_array_from_process_local_data(
        self._sharding, np.full((self._local,), int(preempted), np.int32), self._shape)
    self._previous, self._pending = self._pending, (step, self._agree(finite, flags))
    return self._read(self._previous)

  def current(self) -> Verdict | None:
    return self._read(self._pending)

  def reset(self) -> None:
    """Forgets pushed steps (after a rollback: they are not the run's any more)."""
    self._pending = self._previous = None

  @staticmethod
  def _read(pending) -> Verdict | None:
    if pending is None:
      return None
    step, value = pending
    finite, preempted = (bool(v) for v in np.asarray(jax.device_get(value)))
    return Verdict(step, finite, preempted)


class _NoTracebacks(py_logging.Filter):
  """Orbax (and gcsfs, under it on gs://) log each failed background write with its
  traceback; the error line says it."""

  def filter(self, record):
    if 'orbax' in record.pathname or 'gcsfs' in record.pathname:
      record.exc_info, record.exc_text = None, None
    return True


def _without_closed_loop_callbacks(hook):
  """sys.unraisablehook that drops one message: TensorStore finishing a failed save's
  requests after Orbax closed their asyncio loop prints 'Event loop is closed' with a
  traceback for each (dozens after a 403); the error line says what failed."""

  def quiet(unraisable):
    value = unraisable.exc_value
    if not (isinstance(value, RuntimeError) and str(value) == 'Event loop is closed'):
      hook(unraisable)
  return quiet


@contextlib.contextmanager
def disk_errors(workdir):
  """OSError (read-only or full disk, permissions) in the block -> DiskError, one line."""
  quiet = _NoTracebacks()
  for name in ('absl', 'gcsfs'):
    py_logging.getLogger(name).addFilter(quiet)
  unraisable_hook, sys.unraisablehook = (
      sys.unraisablehook, _without_closed_loop_callbacks(sys.unraisablehook))
  try:
    yield
  except OSError as e:
    where = f' {e.filename}' if e.filename else ''
    raise DiskError(f'cannot write{where} (workdir {workdir}): {e.strerror or e}; '
                    'checkpoints written before are kept') from None
  finally:
    for name in ('absl', 'gcsfs'):
      py_logging.getLogger(name).removeFilter(quiet)
    sys.unraisablehook = unraisable_hook


@contextlib.contextmanager
def checkpoint_errors(step, mngr):
  """A failed Orbax save or wait -> DiskError naming the step; older checkpoints stay."""
  try:
    yield
  except TrainingError:
    raise
  except Exception as e:  # Orbax/TensorStore raise ValueError, OSError, ...
    errors.collect_failed_reads()
    raise DiskError(f'checkpoint {step} could not be written to {mngr.directory} '
                    f'({_why(e)}); the checkpoints before it are kept') from None


@contextlib.contextmanager
def out_of_memory(config, mngr=None):
  """A step that meets the device's memory limit, compiling or running, on any backend
  -> OutOfMemoryError: one line with the bytes needed and available and the levers.
  The failing step's state is never saved; a save of an earlier step in flight
  finishes first, so every checkpoint is kept."""
  from biggan_jax.aot import topologies
  from biggan_jax.training import auto_accumulation
  try:
    yield
  except jax.errors.JaxRuntimeError as e:
    if not auto_accumulation.is_out_of_memory(e):
      raise
    if mngr is not None:
      with contextlib.suppress(Exception):
        mngr.wait_until_finished()
    parsed = topologies.parse_oom(str(e))
    device = jax.local_devices()[0]  # another host's device reports no memory here
    limit = parsed[1] if parsed else auto_accumulation.device_limit(device)
    gib = lambda b: 'n/a' if b is None else f'{b / 2**30:.3g} GiB'
    needs = (f'needs {gib(parsed[0])} per device, {gib(limit)} available' if parsed else
             f'{" ".join(str(e).split())[:200]}; {gib(limit)} per device available')
    raise auto_accumulation.OutOfMemoryError(
        f'out of memory on {jax.device_count()} x {device.device_kind} with '
        f'num_accumulations={config.num_accumulations}: the step {needs}; try '
        f'{auto_accumulation.levers(config, jax.device_count())} (nothing of this step '
        f'was saved; the checkpoints are kept)') from None


def _why(error: BaseException) -> str:
  """TensorStore's status and the OS error at the end of its long message, else one line."""
  text = errors.describe_error(error)
  if re.match(r'(OSError: )?Forbidden: |PERMISSION_DENIED: ', text):  # gcsfs | TensorStore
    return 'permission denied (HTTP 403): these credentials may not write to the bucket'
  os_error = re.search(r":\s*([^:\[]+?)\s*\[os_error_code='\d+'\]", str(error))
  if os_error:
    return f'{text.split(":", 1)[0]}: {os_error[1]}'
  return text
