"""The workdir lease: one run per workdir, stale leases taken over, races settled."""

import json
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from biggan_jax.checkpoints import lock


def write_lease(workdir, **fields):
  lease = {'host': socket.gethostname(), 'pid': os.getppid(), 'start': time.time(),
           'heartbeat': time.time(), 'token': 'theirs', **fields}
  (workdir / lock.LOCK_NAME).write_text(json.dumps(lease))


def dead_pid() -> int:
  proc = subprocess.Popen([sys.executable, '-c', 'pass'])
  proc.wait()
  return proc.pid


def test_acquire_writes_the_lease_and_release_removes_it(tmp_path):
  held = lock.WorkdirLock(tmp_path)
  held.acquire()
  lease = json.loads((tmp_path / 'lock.json').read_text())
  assert lease['pid'] == os.getpid() and lease['host'] == socket.gethostname()
  assert set(lease) == {'host', 'pid', 'start', 'heartbeat', 'token'}
  held.release()
  assert not (tmp_path / 'lock.json').exists()


def test_a_live_lease_stops_a_second_run_naming_it(tmp_path):
  write_lease(tmp_path)  # our parent process: alive, on this host
  with pytest.raises(lock.LockError) as error:
    lock.WorkdirLock(tmp_path).acquire()
  message = str(error.value)
  assert '\n' not in message
  assert f'{tmp_path} is in use by another run: pid {os.getppid()} on {socket.gethostname()}' \
      in message
  assert 'last heartbeat 0 s ago' in message and f'delete {tmp_path}/lock.json' in message
  assert json.loads((tmp_path / 'lock.json').read_text())['token'] == 'theirs'


def test_a_live_lease_on_another_host_stops_it_too(tmp_path):
  write_lease(tmp_path, host='tpu-worker-7', pid=dead_pid())  # its pid means nothing here
  with pytest.raises(lock.LockError, match='pid .* on tpu-worker-7'):
    lock.WorkdirLock(tmp_path).acquire()


@pytest.mark.parametrize('lease,reason', [
    (lambda: {'pid': dead_pid()}, 'its process is gone'),          # kill -9 on this host
    (lambda: {'host': 'tpu-worker-7', 'heartbeat': time.time() - 1000},
     'no heartbeat for over 120 s'),                                 # a host that went away
    (lambda: {'pid': os.getpid()}, "this process's own"),            # an earlier run in-process
], ids=['dead_pid', 'old_heartbeat', 'own_pid'])
def test_a_stale_lease_is_taken_over_with_a_warning(lease, reason, tmp_path, monkeypatch, caplog):
  monkeypatch.setattr(lock, 'SETTLE_S', 0.01)
  write_lease(tmp_path, **lease())
  held = lock.WorkdirLock(tmp_path)
  held.acquire()
  assert json.loads((tmp_path / 'lock.json').read_text())['pid'] == os.getpid()
  assert any('taking over the lease' in r.getMessage() and reason in r.getMessage()
             for r in caplog.records)
  held.release()


def test_a_second_run_in_this_process_is_refused_while_the_first_holds(tmp_path, monkeypatch):
  """A lease naming this process is stale only once no WorkdirLock in it holds it: two
  runs in one process (threads, a notebook) do not both hold the workdir. CI's loaded
  host once let the gs:// race below hand the lease to both threads."""
  monkeypatch.setattr(lock, 'SETTLE_S', 0.01)
  first = lock.WorkdirLock(tmp_path)
  first.acquire()
  with pytest.raises(lock.LockError, match=f'in use by another run: pid {os.getpid()} '):
    lock.WorkdirLock(tmp_path).acquire()
  first.release()
  again = lock.WorkdirLock(tmp_path)
  again.acquire()  # released: the workdir is free again
  again.release()


def test_a_torn_lease_is_stale(tmp_path, monkeypatch):
  monkeypatch.setattr(lock, 'SETTLE_S', 0.01)
  (tmp_path / 'lock.json').write_text('{"host": "a", "pi')
  held = lock.WorkdirLock(tmp_path)
  held.acquire()
  held.release()


def test_the_heartbeat_renews_the_lease(tmp_path, monkeypatch):
  monkeypatch.setattr(lock, 'HEARTBEAT_S', 0.05)
  held = lock.WorkdirLock(tmp_path)
  held.acquire()
  first = json.loads((tmp_path / 'lock.json').read_text())['heartbeat']
  deadline = time.time() + 10
  while json.loads((tmp_path / 'lock.json').read_text())['heartbeat'] == first:
    assert time.time() < deadline
    time.sleep(0.05)
  held.release()
  assert not (tmp_path / 'lock.json').exists()


def test_of_two_runs_starting_at_once_one_wins(gcs):
  """On gs:// (the emulator) both runs find no lease and create it conditionally
  (ifGenerationMatch=0): GCS lets exactly one write succeed; the other stops."""
  workdir = gcs.bucket('locks') + '/race'
  locks = [lock.WorkdirLock(workdir) for _ in range(2)]
  outcome = [None, None]
  barrier = threading.Barrier(2, timeout=60)

  def run(i):
    try:
      barrier.wait()
      locks[i].acquire()
      outcome[i] = 'held'
    except lock.LockError as e:
      outcome[i] = str(e)

  threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
  for t in threads:
    t.start()
  for t in threads:
    t.join()
  assert sorted(o == 'held' for o in outcome) == [False, True], outcome
  loser = next(o for o in outcome if o != 'held')
  # Both found no lease and raced to create it, or the second saw the first's already.
  assert ('was taken by another run starting at the same time' in loser
          or 'is in use by another run' in loser), loser
  for held in locks:
    held.release()


def test_hold_releases_on_errors(tmp_path):
  with pytest.raises(RuntimeError):
    with lock.hold(tmp_path):
      assert (tmp_path / 'lock.json').exists()
      raise RuntimeError('the run failed')
  assert not (tmp_path / 'lock.json').exists()
