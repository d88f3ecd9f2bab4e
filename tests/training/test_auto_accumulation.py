"""num_accumulations=auto: the search against memory models with a known answer, the CPU
(no limit) path, and training under a simulated device limit: k > 1 chosen, recorded in
config.json and the checkpoint meta, reused on resume with one compile."""

import json
import pathlib

import jax
import pytest

from biggan_jax import config as config_lib
from biggan_jax.checkpoints import run_checkpoints
from biggan_jax.training import auto_accumulation, loop
from paths import REPO

GiB = 2**30
CANDIDATES = [1, 2, 4, 8, 16, 32, 64]


def memory(state, activations, power=1.0, limit=None):
  """A verdict from bytes(k) = state + activations / k**power (what a compile would say)."""
  def verdict(k):
    used = state + activations / k**power
    calls.append(k)
    return auto_accumulation.Verdict(k, used <= limit, used, 1.0)
  calls = []
  return verdict, calls


def test_jumps_with_room_then_confirms_the_fewest_k_the_verdicts_predict():
  # The example: 8 needs 54.9 GiB, a 30.75 GiB chip; the state is 5 GiB.
  verdict, calls = memory(5 * GiB, 8 * 49.9 * GiB, limit=30.75 * GiB)
  choice = auto_accumulation.search(CANDIDATES, verdict, limit=30.75 * GiB, fixed_bytes=5 * GiB)
  # The jump leaves room (32, estimated at 17.5); the two verdicts then place 16 within the
  # limit, and its compile confirms it; 8 is estimated at 54.9 and never compiled.
  assert choice.k == 16 and calls == [1, 32, 16]
  line = choice.line()
  assert line == ('num_accumulations=auto: 16 (peak 29.95 of 30.75 GiB per device; '
                  '1 needs 404.20; 3 compiles, 3 s)'), line


def test_a_superlinear_step_ends_on_a_k_that_fits_within_three_compiles():
  # Activations fall faster than 1/k: the estimates err on the safe side.
  verdict, calls = memory(1 * GiB, 40 * GiB, power=1.5, limit=4 * GiB)
  choice = auto_accumulation.search(CANDIDATES, verdict, limit=4 * GiB, fixed_bytes=1 * GiB)
  assert len(calls) <= 3 and choice.k is not None
  assert verdict(choice.k).fits and choice.k in (8, 16)
  assert all(not verdict(c).fits for c in CANDIDATES if c < 8)


def test_an_underestimate_is_corrected_by_the_next_compile():
  # The state counts twice (optimizer temporaries): 1/k alone predicts too small a k.
  verdict, calls = memory(3 * GiB, 16 * GiB, limit=4 * GiB)
  choice = auto_accumulation.search(CANDIDATES, verdict, limit=4 * GiB, fixed_bytes=1 * GiB)
  # 8 (estimated from the arguments alone) fails; the two verdicts' line gives 32, which
  # fits; 16 would too, but the three compiles are spent.
  assert choice.k == 32 and calls == [1, 8, 32]


def test_nothing_fits_after_three_compiles():
  verdict, calls = memory(8 * GiB, 16 * GiB, limit=4 * GiB)
  choice = auto_accumulation.search(CANDIDATES, verdict, limit=4 * GiB, fixed_bytes=8 * GiB)
  assert choice.k is None and len(calls) <= 3 and calls[-1] == 64  # the smallest step tried


def test_a_resumed_k_that_fits_is_one_compile():
  verdict, calls = memory(1 * GiB, 16 * GiB, limit=4 * GiB)
  choice = auto_accumulation.search(CANDIDATES, verdict, limit=4 * GiB, fixed_bytes=1 * GiB,
                                    start=8)
  assert choice.k == 8 and calls == [8]


def test_an_oom_without_bytes_doubles():
  def verdict(k):
    calls.append(k)
    return auto_accumulation.Verdict(k, k >= 4, None if k < 4 else 1.0, 1.0)
  calls = []
  choice = auto_accumulation.search(CANDIDATES, verdict, limit=4.0, fixed_bytes=0.0)
  assert choice.k == 4 and calls == [1, 2, 4]


def tiny(**overrides):
  """configs/tiny.py at 16x16 without attention: a step that compiles in seconds."""
  config = config_lib.from_file(REPO / 'configs' / 'tiny.py', num_d_steps=1, batch_size=32,
                                num_accumulations='auto', **overrides)
  config.model.update(resolution=16, g_attn='', d_attn='')
  return config


def test_a_backend_without_a_limit_takes_one_without_compiling():
  config, train, record = auto_accumulation.build(tiny())
  assert config.num_accumulations == 1 and record['tried'] == []
  assert record['line'] == 'num_accumulations=auto: 1 (cpu reports no device memory limit)'
  assert train.step is not None


def test_trains_under_a_simulated_limit_and_a_resume_reuses_the_choice(tmp_path, monkeypatch,
                                                                        capsys):
  # The bytes one pass uses, then a limit that only a smaller micro-batch meets.
  monkeypatch.setattr(auto_accumulation, 'device_limit', lambda device: 1e15)
  _, _, measured = auto_accumulation.build(tiny())
  one_pass = measured['tried'][0]['bytes']
  limit = 0.8 * one_pass / auto_accumulation.GPU_MARGIN
  monkeypatch.setattr(auto_accumulation, 'device_limit', lambda device: limit)
  config = tiny(total_steps=2, checkpoint_every=2, sample_every=0)
  loop.train_and_evaluate(config, str(tmp_path))
  line = next(l for l in capsys.readouterr().out.splitlines() if l.startswith('num_acc'))
  written = json.loads((tmp_path / 'config.json').read_text())
  k = written['num_accumulations']
  assert k in (2, 4) and line.startswith(f'num_accumulations=auto: {k} (peak ')
  meta = run_checkpoints.newest_meta(tmp_path / 'checkpoints')[1]
  record = meta['accumulation']
  assert record['num_accumulations'] == k and record['tried'][0]['k'] == 1
  assert not record['tried'][0]['fits'] and record['tried'][-1]['bytes'] <= 0.8 * one_pass
  assert record['signature']['devices'] == jax.device_count()
  # The same devices: the recorded k, confirmed by one compile; the run goes on.
  state = loop.train_and_evaluate(tiny(total_steps=3, checkpoint_every=3, sample_every=0),
                                  str(tmp_path))
  assert int(state.step) == 3
  line = next(l for l in capsys.readouterr().out.splitlines() if l.startswith('num_acc'))
  assert line.startswith(f'num_accumulations=auto: {k} (as the checkpoint records'), line
  again = run_checkpoints.newest_meta(tmp_path / 'checkpoints')[1]['accumulation']
  assert [t['k'] for t in again['tried']] == [k]


def test_nothing_fitting_is_one_line_before_anything_is_written(tmp_path, monkeypatch):
  monkeypatch.setattr(auto_accumulation, 'device_limit', lambda device: 1.0)
  with pytest.raises(auto_accumulation.OutOfMemoryError) as error:
    loop.train_and_evaluate(tiny(total_steps=1), str(tmp_path))
  message = str(error.value)
  assert message.startswith('num_accumulations=auto: no step fits 8 x cpu (')
  assert 'try --config.fsdp=True, --config.model.remat=nothing_saveable, ' in message
  assert '\n' not in message and not (tmp_path / 'checkpoints').exists()
