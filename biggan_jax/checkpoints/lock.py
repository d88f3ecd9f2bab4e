"""WORKDIR/lock.json: one training run per workdir, local or gs://.

Two runs on one workdir overwrite each other's checkpoints and interleave
metrics.jsonl. The run's process 0 holds a lease: a JSON file with its host,
pid, start time and a heartbeat that a background thread renews every
HEARTBEAT_S seconds. A second run finding a live lease stops with one line
naming the holder. A lease is stale, and is taken over with a warning, when
its heartbeat is older than STALE_S, or at once when it names this host and
a pid that no longer runs (kill -9, a crash), or this very process when no
WorkdirLock in it holds that lease any more.

Locally a fresh lease is created with O_EXCL. On gs:// every write of the
lease is conditional (GCS preconditions, ifGenerationMatch; utils/storage.py):
creating it requires that no object exists, taking over a stale one or renewing
one's own requires the generation last read. GCS applies the check and the
write atomically, so of two runs racing for one workdir exactly one write
succeeds and the other stops; a run whose lease was taken over (it looked
stale) learns it at its next renewal and says so.
"""

import contextlib
import json
import os
import socket
import threading
import time
import uuid

import jax
import numpy as np
from absl import logging
from etils import epath

from biggan_jax import errors
from biggan_jax.utils import storage

LOCK_NAME = 'lock.json'
HEARTBEAT_S = 15.0
STALE_S = 120.0
RELEASE_S = 10.0  # gs://: how long the end of a run retries removing its lease.
SETTLE_S = 2.0  # local only: a lease written over a torn one is read back after this.
_LIVE = set()  # tokens of the leases that WorkdirLocks of this process hold or are taking.


class LockError(errors.TrainingError):
  """The workdir is in use by another run; the message names it."""


def _pid_alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:  # someone else's process.
    return True
  return True


def _describe(lease: dict, now: float) -> str:
  age = now - float(lease.get('heartbeat', 0))
  started = time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(float(lease.get('start', 0))))
  return (f"pid {lease.get('pid')} on {lease.get('host')} (started {started}, last "
          f'heartbeat {age:.0f} s ago)')


class WorkdirLock:
  """The lease on one workdir; `acquire()`, then `release()` when the run ends."""

  def __init__(self, workdir):
    self.path = epath.Path(workdir) / LOCK_NAME
    self.local = not storage.is_remote(self.path)
    self.lease = None
    self.seen = 0  # gs://: the generation of the lease object last read.
    self.generation = 0  # gs://: the generation of the lease object this run wrote last.
    self._stop = threading.Event()
    self._thread = None

  def _read(self, timeout_s: float = 60) -> dict | None:
    try:
      if self.local:
        text = self.path.read_text()
      else:
        text, self.seen = storage.read_versioned(self.path, timeout_s)
        if text is None:
          return None
      lease = json.loads(text)
    except FileNotFoundError:
      return None
    except ValueError:  # torn or unreadable: whoever wrote it is not renewing it.
      return {}
    except OSError:
      if not self.local:
        raise  # the bucket is unreachable or forbids reading: say so, not "unreadable lease".
      return {}
    return lease if isinstance(lease, dict) else {}

  def _write(self, exclusive: bool = False) -> None:
    text = json.dumps(self.lease)
    if exclusive:
      fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
      with os.fdopen(fd, 'w') as f:
        f.write(text)
    elif self.local:
      tmp = self.path.parent / f'.{LOCK_NAME}.tmp-{os.getpid()}'
      tmp.write_text(text)
      os.replace(tmp, self.path)
    else:
      self.path.write_text(text)

  def stale_reason(self, lease: dict, now: float) -> str | None:
    """Why `lease` no longer holds the workdir, or None while its run is alive."""
    if not lease:
      return 'it is unreadable'
    if now - float(lease.get('heartbeat', 0)) > STALE_S:
      return f'no heartbeat for over {STALE_S:.0f} s'
    if lease.get('host') == socket.gethostname():
      pid = int(lease.get('pid', -1))
      if pid == os.getpid():
        if lease.get('token') in _LIVE:
          return None  # held by another run in this process (two threads, a notebook)
        return 'it is this process\'s own, left by an earlier run in it'
      if not _pid_alive(pid):
        return 'its process is gone'
    return None

  def acquire(self) -> None:
    """Takes the lease or raises LockError naming the run that holds it."""
    now = time.time()
    self.lease = {'host': socket.gethostname(), 'pid': os.getpid(), 'start': now,
                  'heartbeat': now, 'token': uuid.uuid4().hex}
    _LIVE.add(self.lease['token'])  # before it is written: no reader may see it unregistered
    try:
      self._take(now)
    except BaseException:
      _LIVE.discard(self.lease['token'])
      raise

  def _take(self, now: float) -> None:
    held = self._read()
    if held is not None:
      reason = self.stale_reason(held, now)
      if reason is None:
        raise LockError(f'{self.path.parent} is in use by another run: {_describe(held, now)}; '
                        f'wait for it to end, or delete {self.path} if it is gone')
      logging.warning('%s: taking over the lease of %s: %s', self.path, _describe(held, now),
                      reason)
    if not self.local:
      try:  # held is None: create only if absent; else replace only the lease just read.
        self.generation = storage.write_if_generation(
            self.path, json.dumps(self.lease), 0 if held is None else self.seen)
      except storage.PreconditionFailed:
        raise LockError(f'{self.path.parent} was taken by another run starting at the same '
                        f'time: {_describe(self._read() or {}, time.time())}') from None
      self._start_heartbeat()
      return
    if held is None:
      try:
        self._write(exclusive=True)
        self._start_heartbeat()
        return
      except FileExistsError:  # created since we looked: settle it as a race.
        pass
    self._write()
    time.sleep(SETTLE_S)
    held = self._read()
    if not held or held.get('token') != self.lease['token']:
      raise LockError(f'{self.path.parent} was taken by another run starting at the same '
                      f'time: {_describe(held or {}, time.time())}')
    self._start_heartbeat()

  def _start_heartbeat(self) -> None:
    self._thread = threading.Thread(target=self._beat, name='workdir-lock', daemon=True)
    self._thread.start()

  def _beat(self) -> None:
    warned = False
    while not self._stop.wait(HEARTBEAT_S):
      self.lease['heartbeat'] = time.time()
      try:
        if self.local:
          self._write()
        else:
          self.generation = storage.write_if_generation(self.path, json.dumps(self.lease),
                                                        self.generation, HEARTBEAT_S)
      except storage.PreconditionFailed:
        logging.warning('%s: another run took over this run\'s lease (it looked stale); '
                        'stop one of them', self.path)
        return
      except OSError as e:  # a full disk: the run goes on; the lease may go stale.
        if not warned:
          logging.warning('%s: cannot renew the lease (%s)', self.path, e)
          warned = True

  def release(self) -> None:
    """Stops the heartbeat and removes the lease if it is still ours."""
    if self.lease:
      _LIVE.discard(self.lease['token'])
    self._stop.set()
    if self._thread is not None:
      self._thread.join()
    with contextlib.suppress(OSError):  # unreachable: the lease goes stale in STALE_S.
      held = self._read(timeout_s=RELEASE_S)
      if held and self.lease and held.get('token') == self.lease['token']:
        if self.local:
          self.path.unlink()
        else:
          storage.delete_if_generation(self.path, self.seen, RELEASE_S)


@contextlib.contextmanager
def hold(workdir):
  """Holds WORKDIR's lease for the block (process 0 for a multi-host run).

  Every process learns whether process 0 got it, so that all stop together
  instead of the others waiting in their first collective.
  """
  lock = WorkdirLock(workdir) if jax.process_index() == 0 else None
  error = None
  if lock is not None:
    try:
      lock.acquire()
    except LockError as e:
      error = e
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils
    ok = multihost_utils.broadcast_one_to_all(np.int32(error is None))
    if not ok and error is None:
      error = LockError(f'{workdir}: process 0 could not take the workdir lease (see its log)')
  if error is not None:
    raise error
  try:
    yield lock
  finally:
    if lock is not None:
      lock.release()
