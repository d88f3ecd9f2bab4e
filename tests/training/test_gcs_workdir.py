"""A gs:// workdir against the GCS emulator (tests/gcs_fixture.py), with only the standard
emulator variables set: training, exact resume, the lease, a damaged checkpoint set
aside, the artefacts, sampling from it, and one-line errors.

The runs are tests/training/test_loop_resume.py's tiny config (its programs come from the
session's compilation cache)."""

import json
import os
import pathlib
import socket
import subprocess
import sys
import time

import fsspec
import jax
import numpy as np
import pytest

from biggan_jax import config as config_lib
from biggan_jax.checkpoints import lock
from biggan_jax.checkpoints import run_checkpoints
from biggan_jax.training import loop
from biggan_jax.training import faults
import damage
from paths import REPO

# The check is 10 steps == 6 + 4 (STEPS=10 FIRST=6 in the environment); CI runs
# 4 == 2 + 2, test_loop_resume.py's length, to keep the suite's time.
STEPS = int(os.environ.get('BIGGAN_JAX_TEST_GCS_STEPS', 4))
FIRST = int(os.environ.get('BIGGAN_JAX_TEST_GCS_FIRST', 2))
BASE = dict(sample_every=2, checkpoint_every=1, log_every=1, max_to_keep=2)


def tiny_config(**overrides):
  return config_lib.from_file(REPO / 'configs' / 'tiny.py', **{**BASE, **overrides})


def gs():
  return fsspec.filesystem('gs')


def _main_command(workdir, total_steps):
  """The tiny run as a process, saving every step (where a kill or a 403 lands)."""
  return [sys.executable, '-m', 'biggan_jax.main', f'--config={REPO}/configs/tiny.py',
          f'--workdir={workdir}', f'--config.total_steps={total_steps}',
          '--config.checkpoint_every=1', '--config.sample_every=0']


@pytest.fixture(scope='module')
def runs(gcs, tmp_path_factory):
  """STEPS steps on local disk; FIRST + restart + the rest in gs://runs/run."""
  straight = loop.train_and_evaluate(  # the reference state only: one save, no sheets
      tiny_config(total_steps=STEPS, checkpoint_every=STEPS, sample_every=0),
      str(tmp_path_factory.mktemp('straight')))
  workdir = gcs.bucket('runs') + '/run'
  loop.train_and_evaluate(tiny_config(total_steps=FIRST), workdir)
  resumed = loop.train_and_evaluate(tiny_config(total_steps=STEPS), workdir)
  return straight, resumed, workdir


def test_exact_resume_on_gcs(runs):
  """STEPS steps straight == FIRST + the rest on gs://, bit for bit."""
  straight, resumed, _ = runs
  assert int(resumed.step) == int(straight.step) == STEPS
  for a, b in zip(jax.tree.leaves(straight), jax.tree.leaves(resumed)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_artefacts_on_gcs(runs):
  """metrics.jsonl has every step once (rewritten whole at each checkpoint: GCS cannot
  append), max_to_keep rotated the checkpoints, the figures, sheets and config are there,
  and the lease is gone."""
  workdir = runs[2]
  fs = gs()
  rows = [json.loads(l) for l in fs.cat(f'{workdir}/metrics.jsonl').decode().splitlines()]
  assert [r['step'] for r in rows] == list(range(1, STEPS + 1))
  steps = sorted(int(p.rsplit('/', 1)[1]) for p in fs.ls(f'{workdir}/checkpoints')
                 if p.rsplit('/', 1)[1].isdigit())
  assert steps == [STEPS - 1, STEPS]  # max_to_keep=2
  for name in ('config.json', 'sigma0.png', 'losses.png', f'samples/step_{STEPS:07d}.png'):
    assert fs.size(f'{workdir}/{name}') > 0, name
  assert json.loads(fs.cat(f'{workdir}/config.json'))['model']['ch'] == 4
  assert not fs.exists(f'{workdir}/lock.json')
  assert any('tfevents' in p for p in fs.ls(workdir))


def test_sample_and_load_generator_from_gcs(runs, tmp_path):
  from biggan_jax import sample
  from biggan_jax.sampling import loading
  workdir = runs[2]
  generator = loading.load_generator(workdir)
  assert generator.meta['step'] == STEPS
  out = f'{workdir}/sheet.png'
  assert sample.main(['sample', f'--checkpoint={workdir}', f'--output={out}',
                      '--labels=0,1', '--num=2']) == 0
  assert gs().size(out) > 0


def _lease(workdir, **fields):
  now = time.time()
  lease = {'host': socket.gethostname(), 'pid': os.getppid(), 'start': now, 'heartbeat': now,
           'token': 'other', **fields}
  gs().pipe(f'{workdir}/lock.json', json.dumps(lease).encode())


def test_second_run_is_refused(runs, capsys):
  """A live lease (this host, a live pid: pytest's parent) stops the run at once with one
  line, and nothing in the workdir changes."""
  workdir = runs[2]
  _lease(workdir)
  try:
    with pytest.raises(lock.LockError, match=r'is in use by another run: pid \d+ on '):
      loop.train_and_evaluate(tiny_config(total_steps=12), workdir)
    assert sorted(p.rsplit('/', 1)[1] for p in gs().ls(f'{workdir}/checkpoints')
                  if p.rsplit('/', 1)[1].isdigit()) == [str(STEPS - 1), str(STEPS)]
  finally:
    gs().rm(f'{workdir}/lock.json')


def test_stale_lease_is_taken_over_conditionally(gcs, runs):
  """A lease whose heartbeat is old is replaced with a generation-matched write; one written
  over it in between makes the takeover fail instead of both runs holding it."""
  workdir = runs[2]
  _lease(workdir, host='elsewhere', heartbeat=time.time() - 3 * lock.STALE_S)
  held = lock.WorkdirLock(workdir)
  held.acquire()
  try:
    assert json.loads(gs().cat(f'{workdir}/lock.json'))['token'] == held.lease['token']
    racer = lock.WorkdirLock(workdir)
    racer._read()  # sees held's generation, then held renews it:
    held.lease['heartbeat'] = time.time()
    from biggan_jax.utils import storage
    held.generation = storage.write_if_generation(held.path, json.dumps(held.lease),
                                                  held.generation)
    with pytest.raises(storage.PreconditionFailed):
      storage.write_if_generation(racer.path, '{}', racer.seen)
  finally:
    held.release()
  assert not gs().exists(f'{workdir}/lock.json')


def test_damaged_checkpoint_is_set_aside_and_the_run_resumes(runs, gcs):
  """A changed value in the last checkpoint's state (only the checksums see it): the run
  names it, copies it to skipped_checkpoints/ and deletes it (GCS has no rename), resumes
  from the one before and reaches the same state as the straight run."""
  straight, _, workdir = runs
  copy = gcs.bucket('runs') + '/damaged'
  gs().copy(workdir + '/checkpoints', copy + '/checkpoints', recursive=True)
  damage.change_a_value(f'{copy}/checkpoints/{STEPS}/state')
  again = loop.train_and_evaluate(tiny_config(total_steps=STEPS), copy)
  for a, b in zip(jax.tree.leaves(straight), jax.tree.leaves(again)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  fs = gs()
  reason = json.loads(fs.cat(f'{copy}/skipped_checkpoints/skipped.jsonl'))
  assert 'checksum mismatch' in reason['reason']
  assert fs.exists(f'{copy}/skipped_checkpoints/{STEPS}/state')
  assert fs.exists(f'{copy}/checkpoints/{STEPS}/commit_success.txt')  # saved again


def test_missing_bucket_is_one_line(gcs):
  with pytest.raises(faults.DiskError) as error:
    loop.train_and_evaluate(tiny_config(total_steps=2), 'gs://no-such-bucket/run')
  assert len(str(error.value).splitlines()) == 1
  assert 'no-such-bucket' in str(error.value)


def test_kill_9_in_a_save_leaves_no_half_checkpoint(runs, gcs):
  """SIGKILL while Orbax writes checkpoint 2 to gs://. An object store has no rename:
  Orbax writes the step's objects in place and commit_success.txt last, and lists only
  steps that have it, so the half-written step is never restored. The resumed run takes
  over the dead run's lease (this host, its pid gone) and ends where the straight run did."""
  straight = runs[0]
  workdir = gcs.bucket('runs') + '/killed'
  steps = pathlib.Path(gcs.root) / 'runs' / 'killed' / 'checkpoints'
  proc = subprocess.Popen(
      _main_command(workdir, STEPS), cwd=REPO, stdout=subprocess.DEVNULL,
      stderr=subprocess.PIPE)
  try:
    deadline = time.monotonic() + 300
    while not (steps / '2').is_dir() and proc.poll() is None and time.monotonic() < deadline:
      time.sleep(0.002)
    proc.kill()
  finally:
    _, err = proc.communicate(timeout=60)
  assert proc.returncode == -9, err.decode()[-2000:]
  listed = run_checkpoints.manager(f'{workdir}/checkpoints', read_only=True).all_steps()
  assert all((steps / str(s) / 'commit_success.txt').exists() for s in listed), listed
  assert gs().exists(f'{workdir}/lock.json')  # the dead run's
  resumed = loop.train_and_evaluate(tiny_config(total_steps=STEPS), workdir)
  for a, b in zip(jax.tree.leaves(straight), jax.tree.leaves(resumed)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_init_from_a_gcs_workdir(runs, tmp_path):
  """--init_from=gs://...: a new local run starts from the gs:// run's latest G, D and EMA G."""
  from biggan_jax.checkpoints import init_from
  workdir = runs[2]
  source = init_from.describe(workdir)
  assert (source.kind, source.step, source.has_discriminator) == ('workdir', STEPS, True)
  state = loop.train_and_evaluate(tiny_config(total_steps=1, sample_every=0), str(tmp_path),
                                  init_from=workdir)
  assert int(state.step) == 1


def test_a_bucket_that_forbids_writing_is_one_line(runs, gcs, monkeypatch):
  """Credentials that may read but not write the bucket (GCS answers 403): one line, and
  the workdir is unchanged."""
  import gcs_fixture
  from biggan_jax.utils import storage
  workdir = runs[2]
  before = sorted(gs().ls(f'{workdir}/checkpoints'))
  with gcs_fixture.forbidding_writes(gcs) as env, monkeypatch.context() as patch:
    for name, value in env.items():
      patch.setenv(name, value)
    with pytest.raises(faults.DiskError) as error:
      loop.train_and_evaluate(tiny_config(total_steps=STEPS + 1), workdir)
  message = str(error.value)
  assert len(message.splitlines()) == 1
  assert 'permission denied (HTTP 403)' in message and 'lock.json' in message, message
  assert sorted(gs().ls(f'{workdir}/checkpoints')) == before
  assert storage.read_versioned(f'{workdir}/lock.json') == (None, 0)


def test_evaluate_analysis_and_fid_read_and_write_gcs(runs, gcs, monkeypatch, capsys,
                                                      tmp_path):
  """`evaluate`, `analysis` and `fid` with the checkpoint, the reference statistics and
  the outputs on gs:// (the stand-in extractor: the FID plumbing is test_protocol.py's),
  and nothing written to the local disk."""
  from biggan_jax import analysis, evaluate, fid
  from biggan_jax.evaluation import protocol, stats as stats_lib
  from stand_in_extractor import ProjectionExtractor
  monkeypatch.chdir(tmp_path)
  monkeypatch.setattr(protocol, 'make_extractor', lambda *a, **k: ProjectionExtractor())
  workdir, out = runs[2], gcs.bucket('runs') + '/eval'
  stats = stats_lib.FeatureStats(100)
  images = np.random.default_rng(0).uniform(-1, 1, (30, 32, 32, 3)).astype(np.float32)
  stats.update(ProjectionExtractor()(images)['pool'], np.arange(30) % 2)
  stats_lib.save_stats(f'{out}/ref.npz', stats)
  code = evaluate.main(['evaluate', f'--checkpoint={workdir}', f'--ref_stats={out}/ref.npz',
                        '--num_samples=20', '--batch_size=10', f'--output={out}/metrics.json'])
  assert code == 0, capsys.readouterr().err
  doc = json.loads(gs().cat(f'{out}/metrics.json'))
  assert np.isfinite(doc['fid']) and doc['protocol']['step'] == STEPS
  code = analysis.main(['analysis', 'truncation_sweep', f'--checkpoint={workdir}',
                        f'--ref_stats={out}/ref.npz', '--truncations=1,0.5',
                        '--num_samples=20', '--batch_size=10', f'--output={out}/sweep'])
  assert code == 0, capsys.readouterr().err
  assert len(gs().cat(f'{out}/sweep/truncation_sweep.jsonl').splitlines()) == 2
  assert gs().size(f'{out}/sweep/truncation_sweep.png') > 0
  code = analysis.main(['analysis', 'interpolations', f'--checkpoint={workdir}',
                        '--labels=0,1', '--steps=3', f'--output={out}/interp'])
  assert code == 0, capsys.readouterr().err
  assert gs().size(f'{out}/interp/interpolation_z.png') > 0
  # --overwrite's rule holds on gs:// too: nothing is replaced without it.
  code = evaluate.main(['evaluate', f'--checkpoint={workdir}', f'--ref_stats={out}/ref.npz',
                        '--num_samples=20', f'--output={out}/metrics.json'])
  assert code == 2 and 'exists' in capsys.readouterr().err
  assert json.loads(gs().cat(f'{out}/metrics.json')) == doc
  code = analysis.main(['analysis', 'interpolations', f'--checkpoint={workdir}',
                        '--labels=0,1', f'--output={out}/interp'])
  assert code == 2 and 'exists' in capsys.readouterr().err
  assert fid.main(['fid', f'{out}/ref.npz', f'{out}/ref.npz']) == 0
  value = capsys.readouterr().out.split('FID: ')[1].split()[0]
  assert abs(float(value)) < 1e-3  # a statistics file against itself
  code = fid.main(['fid', f'{out}/images', f'{out}/ref.npz'])
  assert code == 2 and 'read from local disk' in capsys.readouterr().err
  assert list(tmp_path.iterdir()) == []


def test_a_403_in_the_middle_of_a_save_is_one_line(runs, gcs):
  """GCS refuses the checkpoint's objects (403) after the lease was written: the run ends
  at once with one line and no traceback, instead of after Orbax's 300 s signal timeout;
  the checkpoints before are kept and the lease released. A process: its exit is tested."""
  import gcs_fixture
  copy = gcs.bucket('runs') + '/forbidden'
  gs().copy(runs[2], copy, recursive=True)
  with gcs_fixture.forbidding_writes(gcs, matching=b'forbidden/checkpoints') as env:
    started = time.monotonic()
    result = subprocess.run(
        _main_command(copy, STEPS + 1), cwd=REPO, env={**os.environ, **env},
        capture_output=True, text=True, timeout=280)
  assert result.returncode == 2, result.stderr[-3000:]
  assert time.monotonic() - started < 200  # Orbax's threads alone would hold it 300 s
  last = result.stderr.strip().splitlines()[-1]
  assert last.startswith(f'error: checkpoint {STEPS + 1} could not be written'), last
  assert 'permission denied (HTTP 403)' in last and 'before it are kept' in last
  assert 'Traceback' not in result.stderr, result.stderr[-3000:]
  listed = run_checkpoints.manager(f'{copy}/checkpoints', read_only=True).all_steps()
  assert sorted(listed) == [STEPS - 1, STEPS]
  assert not gs().exists(f'{copy}/lock.json')
