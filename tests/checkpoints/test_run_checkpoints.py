"""Training checkpoints: checksums verified on restore, walking back past unusable ones; a
manager for restoring says nothing and creates nothing."""

import json
import logging
import os
import pathlib
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest

from biggan_jax.checkpoints import run_checkpoints


def state_at(step):
  """A stand-in TrainState: random floats (incompressible: a flipped byte changes a value)."""
  rng = np.random.default_rng(step)
  return {'w': jnp.asarray(rng.standard_normal((256, 64)), jnp.float32),
          'step': jnp.int32(step)}


def ema_at(step):
  rng = np.random.default_rng(100 + step)
  return {'params': {'w': jnp.asarray(rng.standard_normal((64, 64)), jnp.float32),
                     'step': jnp.float32(step)}}


def save_steps(directory, steps=(1, 2, 3), **meta):
  mngr = run_checkpoints.manager(directory, max_to_keep=5)
  for s in steps:
    run_checkpoints.save(mngr, s, state_at(s), ema_at(s), {'step': s, **meta})
  mngr.wait_until_finished()
  return mngr


def data_file(directory, step, item='state'):
  """The largest array data file of `item` (OCDBT's d/ folders): where the values are."""
  files = [os.path.join(d, f) for d, _, fs in os.walk(directory / str(step) / item)
           for f in fs if os.path.basename(d) == 'd']
  return max(files, key=os.path.getsize)


def flip_byte(path):
  path = pathlib.Path(path)
  data = bytearray(path.read_bytes())
  data[len(data) // 2] ^= 0x10
  path.write_bytes(data)


def truncate(path):
  with open(path, 'r+b') as f:
    f.truncate(100)


CORRUPTIONS = {
    'flipped_byte': (lambda d: flip_byte(data_file(d, 3)), 'checksum mismatch'),
    'truncated': (lambda d: truncate(data_file(d, 3)), ''),
    'deleted': (lambda d: os.remove(data_file(d, 3)), ''),
    'garbage_meta': (lambda d: (d / '3' / 'meta' / 'metadata').write_text('{torn'), ''),
    'no_state': (lambda d: shutil.rmtree(d / '3' / 'state'), 'state'),
}


@pytest.mark.parametrize('case', sorted(CORRUPTIONS))
def test_restore_walks_back_and_sets_the_bad_one_aside(case, tmp_path, caplog):
  corrupt, reason = CORRUPTIONS[case]
  directory = tmp_path / 'checkpoints'
  save_steps(directory)
  corrupt(directory)
  mngr = run_checkpoints.manager(directory, max_to_keep=5)
  step, state, meta = run_checkpoints.restore_newest(mngr, state_at(0))
  assert step == 2 and meta['step'] == 2
  np.testing.assert_array_equal(state['w'], state_at(2)['w'])
  assert mngr.all_steps() == [1, 2]          # so that the next save of step 3 happens
  assert (tmp_path / 'skipped_checkpoints' / '3' / 'state').exists() or case == 'no_state'
  record = json.loads((tmp_path / 'skipped_checkpoints' / 'skipped.jsonl').read_text())
  assert record['step'] == 3 and reason in record['reason']
  [line] = [r.getMessage() for r in caplog.records if 'cannot be used' in r.getMessage()]
  assert line.startswith('checkpoint 3 cannot be used, trying an older one: ')
  assert '\n' not in line


def test_a_step_set_aside_twice_keeps_both(tmp_path):
  directory = tmp_path / 'checkpoints'
  mngr = save_steps(directory, (1, 2))
  run_checkpoints.set_aside(mngr, 2, 'first')
  run_checkpoints.save(mngr, 2, state_at(2), ema_at(2), {'step': 2})
  mngr.wait_until_finished()
  run_checkpoints.set_aside(mngr, 2, 'second')
  assert sorted(os.listdir(tmp_path / 'skipped_checkpoints')) == ['2', '2.1', 'skipped.jsonl']
  assert mngr.all_steps() == [1]


def test_when_none_restores_nothing_is_moved(tmp_path):
  directory = tmp_path / 'checkpoints'
  save_steps(directory, (1, 2))
  for s in (1, 2):
    flip_byte(data_file(directory, s))
  mngr = run_checkpoints.manager(directory, max_to_keep=5)
  with pytest.raises(run_checkpoints.CheckpointError, match='none of its 2 checkpoints can be '
                     r'restored \(step 2: checkpoint 2: its state is not what was saved'):
    run_checkpoints.restore_newest(mngr, state_at(0))
  assert mngr.all_steps() == [1, 2] and not (tmp_path / 'skipped_checkpoints').exists()


def test_a_state_with_other_entries_is_named_not_pasted(tmp_path):
  """An upgrade (or augment_adaptive) changes the state's tree; Orbax's own text is pages."""
  directory = tmp_path / 'checkpoints'
  save_steps(directory, (1,))
  target = dict(state_at(0), ada={'p': jnp.float32(0)})
  with pytest.raises(run_checkpoints.CheckpointError) as e:
    run_checkpoints.restore_newest(run_checkpoints.manager(directory, max_to_keep=5), target)
  assert '\n' not in str(e.value)
  assert ('(step 1: its training state holds other entries than this run\'s (written by another '
          'biggan_jax version, or with options that add state') in str(e.value)
  assert (directory / '1').exists()


def test_no_checkpoint_is_none(tmp_path):
  assert run_checkpoints.restore_newest(run_checkpoints.manager(tmp_path / 'c'), state_at(0)) is None


def test_checkpoints_from_before_checksums_still_restore(tmp_path):
  """Written without meta['checksums'] (biggan_jax before it had them)."""
  mngr = run_checkpoints.manager(tmp_path, max_to_keep=5)
  mngr.save(1, args=ocp.args.Composite(
      state=ocp.args.StandardSave(state_at(1)), ema_generator=ocp.args.StandardSave(ema_at(1)),
      meta=ocp.args.JsonSave({'step': 1})))
  mngr.wait_until_finished()
  step, state, _ = run_checkpoints.restore_newest(mngr, state_at(0))
  assert step == 1 and int(state['step']) == 1


def test_ema_generator_walks_back_without_moving_anything(tmp_path):
  directory = tmp_path / 'checkpoints'
  save_steps(directory)
  flip_byte(data_file(directory, 3, 'ema_generator'))
  meta, variables = run_checkpoints.restore_ema_generator(str(directory))
  assert meta['step'] == 2 and float(variables['params']['step']) == 2.0
  [skipped] = meta['skipped']
  assert skipped.startswith('checkpoint 3 skipped: checkpoint 3: its ema_generator is not '
                            'what was saved (checksum mismatch')
  assert sorted(os.listdir(directory)) == ['1', '2', '3']
  with pytest.raises(run_checkpoints.CheckpointError, match='checksum mismatch'):
    run_checkpoints.restore_ema_generator(str(directory), 3)  # asked for by step: no walking back


def test_newest_meta_reads_json_only(tmp_path):
  directory = tmp_path / 'checkpoints'
  save_steps(directory, model={'ch': 4})
  (directory / '3' / 'meta' / 'metadata').write_text('{torn')
  step, meta = run_checkpoints.newest_meta(directory)
  assert step == 2 and meta['model'] == {'ch': 4} and set(meta['checksums']) == {
      'state', 'ema_generator'}
  assert run_checkpoints.newest_meta(tmp_path / 'nothing') is None


def test_read_only_manager_does_not_warn_read_only(tmp_path, caplog):
  (tmp_path / 'checkpoints').mkdir()
  with caplog.at_level(logging.INFO):
    ocp.CheckpointManager(str(tmp_path / 'checkpoints'),
                          options=ocp.CheckpointManagerOptions(read_only=True)).close()
  assert 'read only' in caplog.text  # Orbax's own option warns on a writable directory
  caplog.clear()
  with caplog.at_level(logging.INFO):
    run_checkpoints.manager(tmp_path / 'checkpoints', read_only=True).close()
  assert 'read only' not in caplog.text
  assert not (tmp_path / 'missing').exists()
  run_checkpoints.manager(tmp_path / 'missing', read_only=True).close()
  assert not (tmp_path / 'missing').exists()
